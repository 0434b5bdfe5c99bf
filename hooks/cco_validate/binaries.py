"""What an executable is, read from its own headers: ELF (Linux) and Mach-O (macOS, one
architecture or universal), with Python's standard library only, since the hooks run in
Copier's environment and GNU binutils cannot read Mach-O. It reads what the target checks
judge: the format and architecture, the dynamic libraries, the interpreter, the symbols left
and, for Mach-O, the minimum macOS version and the code signature's page hashes.

Layouts: the ELF-64 specification (System V gABI); Apple's <mach-o/loader.h>, <mach-o/fat.h>
and <mach-o/nlist.h>; the code signature as Apple's xnu <kern/cs_blobs.h> defines it (all
multi-byte fields of the signature are big-endian).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "arm64"}

# <mach-o/loader.h>
LC_SYMTAB = 0x2
LC_DYSYMTAB = 0xB
LC_LOAD_DYLIB = 0xC
LC_CODE_SIGNATURE = 0x1D
LC_LAZY_LOAD_DYLIB = 0x20
LC_VERSION_MIN_MACOSX = 0x24
LC_BUILD_VERSION = 0x32
LC_LOAD_WEAK_DYLIB = 0x80000018
LC_REEXPORT_DYLIB = 0x8000001F
LC_LOAD_UPWARD_DYLIB = 0x80000023
DYLIB_COMMANDS = {LC_LOAD_DYLIB, LC_LAZY_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB, LC_LOAD_UPWARD_DYLIB}
PLATFORM_MACOS = 1
MH_EXECUTE = 2
# <kern/cs_blobs.h>
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CS_ADHOC = 0x2
HASHES = {1: "sha1", 2: "sha256", 3: "sha256", 4: "sha384"}  # sha256-truncated (3) keeps 20 bytes


class NotAnExecutable(ValueError):
    """The file is neither ELF-64 nor Mach-O-64 (little-endian), nor a universal Mach-O."""


@dataclass(frozen=True)
class Signature:
    adhoc: bool
    pages: int
    bad_pages: int

    @property
    def valid(self) -> bool:
        return self.pages > 0 and self.bad_pages == 0


@dataclass(frozen=True)
class Executable:
    format: str  # "ELF" or "Mach-O"
    arch: str  # x86_64, aarch64 (ELF) or arm64 (Mach-O)
    executable: bool  # ELF ET_EXEC/ET_DYN with an entry point; Mach-O MH_EXECUTE
    libraries: tuple[str, ...]  # DT_NEEDED (ELF) or the LC_*_DYLIB paths (Mach-O)
    # Symbols a strip removes: ELF's .symtab (a stripped binary keeps only .dynsym); Mach-O's
    # local symbols and debug stabs (`strip -x`, what rustc runs for Apple targets, keeps the
    # exported ones dyld needs, such as __mh_execute_header).
    strippable_symbols: int
    interpreter: str | None = None  # ELF PT_INTERP: None for a static binary
    macos_min: str | None = None  # LC_BUILD_VERSION (or LC_VERSION_MIN_MACOSX) minos, "11.0"
    signature: Signature | None = None  # Mach-O LC_CODE_SIGNATURE
    slices: tuple[Executable, ...] = field(default=())  # a universal binary's architectures

    @property
    def static(self) -> bool:
        return self.format == "ELF" and self.interpreter is None and not self.libraries


def read(path: Path) -> Executable:
    data = path.read_bytes()
    if data[:4] == b"\x7fELF":
        return read_elf(data)
    if data[:4] == b"\xca\xfe\xba\xbe":
        return read_universal(data)
    if data[:4] == b"\xcf\xfa\xed\xfe":
        return read_macho(data)
    raise NotAnExecutable(f"{path} is not an ELF-64 or Mach-O-64 executable")


def cstring(data: bytes, offset: int) -> str:
    end = data.index(b"\0", offset)
    return data[offset:end].decode("utf-8", "replace")


def read_elf(data: bytes) -> Executable:
    if data[4] != 2 or data[5] != 1:
        raise NotAnExecutable("not a 64-bit little-endian ELF file")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    e_entry, e_phoff, e_shoff = struct.unpack_from("<QQQ", data, 24)
    e_phentsize, e_phnum, e_shentsize, e_shnum = struct.unpack_from("<HHHH", data, 54)
    segments = [struct.unpack_from("<IIQQQQQQ", data, e_phoff + i * e_phentsize) for i in range(e_phnum)]
    loads = [(vaddr, offset, filesz) for kind, _, offset, vaddr, _, filesz, _, _ in segments if kind == 1]

    def file_offset(address: int) -> int:
        for vaddr, offset, filesz in loads:
            if vaddr <= address < vaddr + filesz:
                return int(address - vaddr + offset)
        raise NotAnExecutable(f"address {address:#x} is in no loaded segment")

    interpreter = next((cstring(data, offset) for kind, _, offset, *_ in segments if kind == 3), None)
    libraries: list[str] = []
    for kind, _, offset, _, _, filesz, _, _ in segments:
        if kind != 2:  # PT_DYNAMIC
            continue
        entries = [struct.unpack_from("<qQ", data, offset + i) for i in range(0, filesz, 16)]
        strtab = next((value for tag, value in entries if tag == 5), None)  # DT_STRTAB
        if strtab is not None:
            base = file_offset(strtab)
            libraries = [cstring(data, base + value) for tag, value in entries if tag == 1]  # DT_NEEDED
    defined = 0
    for i in range(e_shnum):
        _, sh_type, _, _, sh_offset, sh_size, _, _, _, sh_entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, e_shoff + i * e_shentsize
        )
        if sh_type == 2 and sh_entsize:  # SHT_SYMTAB: .dynsym (type 11) is what a stripped binary keeps
            for entry in range(sh_offset, sh_offset + sh_size, sh_entsize):
                st_shndx = struct.unpack_from("<H", data, entry + 6)[0]
                defined += st_shndx != 0
    return Executable(
        format="ELF",
        arch=ELF_MACHINES.get(e_machine, f"machine {e_machine}"),
        executable=e_type in (2, 3) and e_entry != 0,
        libraries=tuple(libraries),
        strippable_symbols=defined,
        interpreter=interpreter,
    )


def version_of(packed: int) -> str:
    """Mach-O packs a version as 16 bits major, 8 minor, 8 patch: 0x000B0000 is 11.0, 0x000A0C00 is 10.12."""
    major, minor, patch = packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF
    return f"{major}.{minor}.{patch}" if patch else f"{major}.{minor}"


def read_universal(data: bytes) -> Executable:
    count = struct.unpack_from(">I", data, 4)[0]
    slices = []
    for i in range(count):
        _, _, offset, size, _ = struct.unpack_from(">IIIII", data, 8 + i * 20)
        slices.append(read_macho(data[offset : offset + size]))
    return Executable(
        format="Mach-O",
        arch=" ".join(part.arch for part in slices),
        executable=all(part.executable for part in slices),
        libraries=tuple(sorted({library for part in slices for library in part.libraries})),
        strippable_symbols=sum(part.strippable_symbols for part in slices),
        slices=tuple(slices),
    )


def read_macho(data: bytes) -> Executable:
    magic, cputype, _, filetype, ncmds, _, _, _ = struct.unpack_from("<IiiIIIII", data, 0)
    if magic != 0xFEEDFACF:
        raise NotAnExecutable("not a 64-bit Mach-O file")
    offset = 32
    libraries: list[str] = []
    macos_min = None
    signature = None
    symbols = (0, 0)
    indirect: set[int] = set()
    for _ in range(ncmds):
        command, size = struct.unpack_from("<II", data, offset)
        if command in DYLIB_COMMANDS:
            libraries.append(cstring(data, offset + struct.unpack_from("<I", data, offset + 8)[0]))
        elif command == LC_BUILD_VERSION:
            platform, minos = struct.unpack_from("<II", data, offset + 8)
            if platform == PLATFORM_MACOS:
                macos_min = version_of(minos)
        elif command == LC_VERSION_MIN_MACOSX:
            macos_min = version_of(struct.unpack_from("<I", data, offset + 8)[0])
        elif command == LC_CODE_SIGNATURE:
            dataoff, datasize = struct.unpack_from("<II", data, offset + 8)
            signature = read_signature(data, dataoff, datasize)
        elif command == LC_SYMTAB:
            symbols = struct.unpack_from("<II", data, offset + 8)
        elif command == LC_DYSYMTAB:
            # The indirect symbol table: the symbols stubs and GOT entries name.
            indirectsymoff, nindirectsyms = struct.unpack_from("<II", data, offset + 56)
            indirect = set(struct.unpack_from(f"<{nindirectsyms}I", data, indirectsymoff))
        offset += size
    symoff, nsyms = symbols
    defined = 0
    for index in range(nsyms):
        n_type = data[symoff + index * 16 + 4]
        # Stabs (N_STAB: debug entries) and local definitions (not N_EXT) count, except a local
        # symbol the indirect symbol table names (a GOT entry of assembly code, such as ring's
        # on x86_64): rustc's strip, like llvm-strip without -x, keeps those.
        stab = bool(n_type & 0xE0)
        local = (n_type & 0x0E) != 0 and not n_type & 0x01 and index not in indirect
        defined += stab or local
    return Executable(
        format="Mach-O",
        arch=MACHO_CPUS.get(cputype, f"cpu {cputype:#x}"),
        executable=filetype == MH_EXECUTE,
        libraries=tuple(libraries),
        strippable_symbols=defined,
        macos_min=macos_min,
        signature=signature,
    )


def read_signature(data: bytes, offset: int, size: int) -> Signature:
    """Checks every page hash of the CodeDirectory against the bytes it covers."""
    blob = data[offset : offset + size]
    magic, _, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE:
        return Signature(adhoc=False, pages=0, bad_pages=0)
    for i in range(count):
        _, blob_offset = struct.unpack_from(">II", blob, 12 + i * 8)
        if struct.unpack_from(">I", blob, blob_offset)[0] != CSMAGIC_CODEDIRECTORY:
            continue
        directory = blob[blob_offset:]
        _, _, _, flags, hash_offset, _, _, code_slots, code_limit = struct.unpack_from(">IIIIIIIII", directory, 0)
        hash_size, hash_type, _, page_shift = struct.unpack_from(">BBBB", directory, 36)
        algorithm = HASHES.get(hash_type)
        if algorithm is None:
            return Signature(adhoc=bool(flags & CS_ADHOC), pages=code_slots, bad_pages=code_slots)
        page = 1 << page_shift if page_shift else code_limit
        bad = 0
        for slot in range(code_slots):
            start = slot * page
            expected = directory[hash_offset + slot * hash_size : hash_offset + (slot + 1) * hash_size]
            actual = hashlib.new(algorithm, data[start : min(start + page, code_limit)]).digest()[:hash_size]
            bad += actual != expected
        return Signature(adhoc=bool(flags & CS_ADHOC), pages=code_slots, bad_pages=bad)
    return Signature(adhoc=False, pages=0, bad_pages=0)
