# marshal.loads called from importlib's _compile_bytecode: caller frame is the importer's.
import importlib._bootstrap_external as be, base64
blob = base64.b64decode('YwAAAAAAAAAAAAAAAAMAAAAAAAAA8xwAAACXAAIAZQBkAKYBAACrAQAAAAAAAAAAAQBkAVMAKQJ6EE1BUlNIQUwtRVhFQy1SQU5OKQHaBXByaW50qQDzAAAAAPoGPGJsb2I++gg8bW9kdWxlPnIFAAAAAQAAAHMcAAAA8AMBAQHYAAWABdAGGNEAGdQAGdAAGdAAGdAAGXIDAAAA')
code = be._compile_bytecode(memoryview(blob))
exec(code)
