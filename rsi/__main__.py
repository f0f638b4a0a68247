from rsi.cli import app

app()
