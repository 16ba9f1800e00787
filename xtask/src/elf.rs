//! A minimal ELF reader for `harden-check` and `size`: header, program headers, dynamic
//! entries, named section headers and symbol tables, for ELF32 and ELF64 in either byte order.
//!
//! Hand-written rather than a crate because the xtask needs a small, fixed subset and the
//! format is stable. Every offset read from the file is bounds-checked, so a truncated or
//! garbage file gives an error naming what was being read, never a panic.

use anyhow::{Context, Result, bail};

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PT_GNU_RELRO: u32 = 0x6474_e552;
pub const PF_X: u32 = 1;

pub const DT_NULL: u64 = 0;
pub const DT_NEEDED: u64 = 1;
pub const DT_STRTAB: u64 = 5;
pub const DT_BIND_NOW: u64 = 24;
pub const DT_FLAGS: u64 = 30;
pub const DT_FLAGS_1: u64 = 0x6fff_fffb;
pub const DF_BIND_NOW: u64 = 0x8;
pub const DF_1_NOW: u64 = 0x1;
pub const DF_1_PIE: u64 = 0x0800_0000;

pub const SHT_SYMTAB: u32 = 2;
pub const SHT_DYNSYM: u32 = 11;
pub const SHT_NOBITS: u32 = 8;

pub const STT_FUNC: u8 = 2;
pub const STT_FILE: u8 = 4;

/// Where the section and symbol indexes overflow into section 0 (extended numbering).
const SHN_XINDEX: u16 = 0xffff;
const PN_XNUM: u16 = 0xffff;

/// A parsed ELF file: only what the checks and the size report read.
#[derive(Debug, Default)]
pub struct Elf {
    pub is_64: bool,
    pub big_endian: bool,
    pub file_type: u16,
    pub machine: u16,
    pub segments: Vec<Segment>,
    /// `(d_tag, d_val)` pairs from PT_DYNAMIC, up to DT_NULL.
    pub dynamic: Vec<(u64, u64)>,
    /// DT_NEEDED library names.
    pub needed: Vec<String>,
    pub sections: Vec<Section>,
    /// Symbols of `.symtab` and `.dynsym` (see [`Symbol::dynamic`]).
    pub symbols: Vec<Symbol>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub kind: u32,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub entsize: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub size: u64,
    /// STT_* (low four bits of st_info).
    pub kind: u8,
    /// False when st_shndx is SHN_UNDEF: the symbol is referenced but defined elsewhere.
    pub defined: bool,
    /// True when the symbol came from `.dynsym`, false for `.symtab`.
    pub dynamic: bool,
}

impl Elf {
    pub fn read(path: &std::path::Path) -> Result<Elf> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Elf::parse(&data).with_context(|| format!("parsing {} as ELF", path.display()))
    }

    /// True when the bytes start with the ELF magic: lets callers skip other files politely.
    pub fn has_magic(data: &[u8]) -> bool {
        data.starts_with(b"\x7fELF")
    }

    pub fn parse(data: &[u8]) -> Result<Elf> {
        if !Elf::has_magic(data) {
            bail!("not an ELF file (no \\x7fELF magic)");
        }
        let ident = data
            .get(..16)
            .context("truncated ELF identification (16 bytes)")?;
        let is_64 = match ident[4] {
            1 => false,
            2 => true,
            c => bail!("unsupported ELF class {c} (expected 1 or 2)"),
        };
        let big_endian = match ident[5] {
            1 => false,
            2 => true,
            d => bail!("unsupported ELF data encoding {d} (expected 1 or 2)"),
        };
        let r = Reader {
            data,
            is_64,
            big_endian,
        };
        let h = r.header().context("reading the ELF header")?;
        let mut elf = Elf {
            is_64,
            big_endian,
            file_type: h.file_type,
            machine: h.machine,
            ..Elf::default()
        };
        elf.sections = r.sections(&h).context("reading section headers")?;
        let phnum = if h.phnum == PN_XNUM {
            r.section0(&h, Field0::Info)? as usize
        } else {
            h.phnum as usize
        };
        elf.segments = r.segments(&h, phnum).context("reading program headers")?;
        if let Some(dynamic) = elf.segment(PT_DYNAMIC).cloned() {
            elf.dynamic = r.dynamic(&dynamic).context("reading the dynamic segment")?;
            elf.needed = r.needed(&elf).context("reading DT_NEEDED names")?;
        }
        for s in elf
            .sections
            .iter()
            .filter(|s| matches!(s.kind, SHT_SYMTAB | SHT_DYNSYM))
        {
            let syms = r
                .symbols(s, &elf.sections)
                .with_context(|| format!("reading symbols of {}", s.name))?;
            elf.symbols.extend(syms);
        }
        Ok(elf)
    }

    pub fn segment(&self, kind: u32) -> Option<&Segment> {
        self.segments.iter().find(|s| s.kind == kind)
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The value of the first dynamic entry with this tag.
    pub fn dyn_value(&self, tag: u64) -> Option<u64> {
        self.dynamic
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    /// Sections holding debug information, compressed (`.zdebug_*`) or not.
    pub fn debug_sections(&self) -> impl Iterator<Item = &Section> {
        self.sections
            .iter()
            .filter(|s| s.name.starts_with(".debug_") || s.name.starts_with(".zdebug_"))
    }
}

struct Header {
    file_type: u16,
    machine: u16,
    phoff: u64,
    shoff: u64,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

/// The fields of section 0 that extended numbering uses.
#[derive(Clone, Copy, Debug)]
enum Field0 {
    Size,
    Link,
    Info,
}

/// Bounds-checked, endian- and class-aware reads.
struct Reader<'a> {
    data: &'a [u8],
    is_64: bool,
    big_endian: bool,
}

impl Reader<'_> {
    fn bytes(&self, off: u64, len: u64) -> Result<&[u8]> {
        let end = off
            .checked_add(len)
            .with_context(|| format!("offset {off:#x} + {len} overflows"))?;
        usize::try_from(off)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(a, b)| self.data.get(a..b))
            .with_context(|| {
                format!(
                    "bytes {off:#x}..{end:#x} are past the end of the file ({} bytes)",
                    self.data.len()
                )
            })
    }

    fn uint(&self, off: u64, len: usize) -> Result<u64> {
        let b = self.bytes(off, len as u64)?;
        let fold = |acc: u64, x: &u8| (acc << 8) | u64::from(*x);
        Ok(if self.big_endian {
            b.iter().fold(0, fold)
        } else {
            b.iter().rev().fold(0, fold)
        })
    }

    fn u8(&self, off: u64) -> Result<u8> {
        Ok(self.uint(off, 1)? as u8)
    }
    fn u16(&self, off: u64) -> Result<u16> {
        Ok(self.uint(off, 2)? as u16)
    }
    fn u32(&self, off: u64) -> Result<u32> {
        Ok(self.uint(off, 4)? as u32)
    }
    /// An address-sized word: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, off: u64) -> Result<u64> {
        self.uint(off, if self.is_64 { 8 } else { 4 })
    }

    /// A NUL-terminated string at `off` inside the string table `[start, start+size)`.
    fn str_at(&self, start: u64, size: u64, off: u64) -> Result<String> {
        if off >= size {
            bail!("string offset {off} is outside its string table ({size} bytes)");
        }
        let table = self.bytes(start, size)?;
        let tail = &table[off as usize..];
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .context("string is not NUL-terminated inside its table")?;
        Ok(String::from_utf8_lossy(&tail[..end]).into_owned())
    }

    fn header(&self) -> Result<Header> {
        // Offsets differ between the classes only after e_entry, which is a word.
        let (phoff, shoff, rest) = if self.is_64 {
            (self.word(32)?, self.word(40)?, 52)
        } else {
            (self.word(28)?, self.word(32)?, 40)
        };
        Ok(Header {
            file_type: self.u16(16)?,
            machine: self.u16(18)?,
            phoff,
            shoff,
            phentsize: self.u16(rest + 2)?,
            phnum: self.u16(rest + 4)?,
            shentsize: self.u16(rest + 6)?,
            shnum: self.u16(rest + 8)?,
            shstrndx: self.u16(rest + 10)?,
        })
    }

    /// sh_size / sh_link / sh_info of section 0, which carry the real counts when they
    /// overflow the header's 16-bit fields.
    fn section0(&self, h: &Header, field: Field0) -> Result<u64> {
        if h.shoff == 0 {
            bail!("extended numbering needs section 0 but there are no section headers");
        }
        let (off, len) = match (field, self.is_64) {
            (Field0::Size, true) => (32, 8),
            (Field0::Size, false) => (20, 4),
            (Field0::Link, true) => (40, 4),
            (Field0::Link, false) => (24, 4),
            (Field0::Info, true) => (44, 4),
            (Field0::Info, false) => (28, 4),
        };
        self.uint(h.shoff + off, len)
            .with_context(|| format!("reading {field:?} of section 0"))
    }

    fn sections(&self, h: &Header) -> Result<Vec<Section>> {
        if h.shoff == 0 {
            return Ok(Vec::new());
        }
        let want = if self.is_64 { 64 } else { 40 };
        if h.shentsize != want {
            bail!("section header size {} (expected {want})", h.shentsize);
        }
        let shnum = if h.shnum == 0 {
            self.section0(h, Field0::Size)?
        } else {
            u64::from(h.shnum)
        };
        // Every header must fit in the file; checking the total first also keeps a
        // garbage count from making us allocate a huge vector.
        self.bytes(h.shoff, shnum * u64::from(want))?;
        let mut raw = Vec::with_capacity(shnum as usize);
        for i in 0..shnum {
            let o = h.shoff + i * u64::from(want);
            let (offset, size, link, entsize) = if self.is_64 {
                (
                    self.word(o + 24)?,
                    self.word(o + 32)?,
                    self.u32(o + 40)?,
                    self.word(o + 56)?,
                )
            } else {
                (
                    self.word(o + 16)?,
                    self.word(o + 20)?,
                    self.u32(o + 24)?,
                    self.word(o + 36)?,
                )
            };
            let name_off = self.u32(o)?;
            let kind = self.u32(o + 4)?;
            raw.push((name_off, kind, offset, size, link, entsize));
        }
        let strndx = if h.shstrndx == SHN_XINDEX {
            self.section0(h, Field0::Link)?
        } else {
            u64::from(h.shstrndx)
        };
        let names = raw
            .get(strndx as usize)
            .map(|&(_, _, off, size, _, _)| (off, size));
        raw.iter()
            .enumerate()
            .map(|(i, &(name_off, kind, offset, size, link, entsize))| {
                let name = match names {
                    Some((start, len)) if i != 0 => self
                        .str_at(start, len, u64::from(name_off))
                        .with_context(|| format!("reading the name of section {i}"))?,
                    _ => String::new(),
                };
                Ok(Section {
                    name,
                    kind,
                    offset,
                    size,
                    link,
                    entsize,
                })
            })
            .collect()
    }

    fn segments(&self, h: &Header, phnum: usize) -> Result<Vec<Segment>> {
        if h.phoff == 0 || phnum == 0 {
            return Ok(Vec::new());
        }
        let want = if self.is_64 { 56 } else { 32 };
        if h.phentsize != want {
            bail!("program header size {} (expected {want})", h.phentsize);
        }
        self.bytes(h.phoff, phnum as u64 * u64::from(want))?;
        (0..phnum as u64)
            .map(|i| {
                let o = h.phoff + i * u64::from(want);
                let kind = self.u32(o)?;
                Ok(if self.is_64 {
                    Segment {
                        kind,
                        flags: self.u32(o + 4)?,
                        offset: self.word(o + 8)?,
                        vaddr: self.word(o + 16)?,
                        filesz: self.word(o + 32)?,
                    }
                } else {
                    Segment {
                        kind,
                        flags: self.u32(o + 24)?,
                        offset: self.word(o + 4)?,
                        vaddr: self.word(o + 8)?,
                        filesz: self.word(o + 16)?,
                    }
                })
            })
            .collect()
    }

    fn dynamic(&self, seg: &Segment) -> Result<Vec<(u64, u64)>> {
        let entsize = if self.is_64 { 16 } else { 8 };
        self.bytes(seg.offset, seg.filesz)?;
        let mut out = Vec::new();
        for i in 0..seg.filesz / entsize {
            let o = seg.offset + i * entsize;
            let tag = self.word(o)?;
            if tag == DT_NULL {
                break;
            }
            out.push((tag, self.word(o + entsize / 2)?));
        }
        Ok(out)
    }

    /// DT_NEEDED names live in DT_STRTAB, given as a virtual address: map it to a file
    /// offset through the PT_LOAD segment that contains it.
    fn needed(&self, elf: &Elf) -> Result<Vec<String>> {
        let offsets: Vec<u64> = elf
            .dynamic
            .iter()
            .filter(|(t, _)| *t == DT_NEEDED)
            .map(|(_, v)| *v)
            .collect();
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let strtab = elf
            .dyn_value(DT_STRTAB)
            .context("DT_NEEDED without DT_STRTAB")?;
        let load = elf
            .segments
            .iter()
            .find(|s| s.kind == PT_LOAD && strtab >= s.vaddr && strtab - s.vaddr < s.filesz)
            .with_context(|| format!("DT_STRTAB {strtab:#x} is in no PT_LOAD segment"))?;
        let start = load.offset + (strtab - load.vaddr);
        let size = load.filesz - (strtab - load.vaddr);
        offsets
            .into_iter()
            .map(|off| self.str_at(start, size, off))
            .collect()
    }

    fn symbols(&self, table: &Section, sections: &[Section]) -> Result<Vec<Symbol>> {
        let want = if self.is_64 { 24 } else { 16 };
        if table.entsize != want {
            bail!("symbol entry size {} (expected {want})", table.entsize);
        }
        let strtab = sections
            .get(table.link as usize)
            .with_context(|| format!("string table index {} out of range", table.link))?;
        self.bytes(table.offset, table.size)?;
        (0..table.size / want)
            .map(|i| {
                let o = table.offset + i * want;
                let (info, shndx, size) = if self.is_64 {
                    (self.u8(o + 4)?, self.u16(o + 6)?, self.word(o + 16)?)
                } else {
                    (self.u8(o + 12)?, self.u16(o + 14)?, self.word(o + 8)?)
                };
                let name_off = u64::from(self.u32(o)?);
                let name = if name_off == 0 {
                    String::new()
                } else {
                    self.str_at(strtab.offset, strtab.size, name_off)
                        .with_context(|| format!("reading the name of symbol {i}"))?
                };
                Ok(Symbol {
                    name,
                    size,
                    kind: info & 0xf,
                    defined: shndx != 0,
                    dynamic: table.kind == SHT_DYNSYM,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a small ELF image in the given class and byte order: a PT_LOAD covering the
    /// file, PT_GNU_STACK (RW), PT_DYNAMIC with DT_NEEDED and DT_FLAGS_1, and sections
    /// `.shstrtab .symtab .strtab .dynstr .debug_info` with three symbols.
    fn build(is_64: bool, big_endian: bool) -> Vec<u8> {
        let int = |v: u64, len: usize| -> Vec<u8> {
            let le = v.to_le_bytes()[..len].to_vec();
            if big_endian {
                le.into_iter().rev().collect()
            } else {
                le
            }
        };
        let w = if is_64 { 8 } else { 4 };
        let word = |v: u64| int(v, w);
        let (ehsize, phent, shent, syment) = if is_64 {
            (64, 56, 64, 24)
        } else {
            (52, 32, 40, 16)
        };
        let strings = |names: &[&str]| -> (Vec<u8>, Vec<u64>) {
            let mut blob = vec![0u8];
            let offs = names
                .iter()
                .map(|n| {
                    let o = blob.len() as u64;
                    blob.extend_from_slice(n.as_bytes());
                    blob.push(0);
                    o
                })
                .collect();
            (blob, offs)
        };
        let (dynstr, dn) = strings(&["libc.so.6"]);
        let (shstr, sn) = strings(&[".shstrtab", ".symtab", ".strtab", ".dynstr", ".debug_info"]);
        let (strtab, yn) = strings(&["a.c", "main", "__stack_chk_fail"]);

        let dynstr_off = (ehsize + 3 * phent) as u64;
        let dyn_off = dynstr_off + dynstr.len() as u64;
        let dyn_entries = [
            (DT_NEEDED, dn[0]),
            (DT_STRTAB, dynstr_off),
            (DT_FLAGS_1, DF_1_NOW | DF_1_PIE),
            (DT_NULL, 0),
        ];
        let dynamic: Vec<u8> = dyn_entries
            .iter()
            .flat_map(|&(t, v)| [word(t), word(v)].concat())
            .collect();
        let shstr_off = dyn_off + dynamic.len() as u64;
        let strtab_off = shstr_off + shstr.len() as u64;
        let sym = |name: u64, info: u8, shndx: u16, size: u64| -> Vec<u8> {
            if is_64 {
                [
                    int(name, 4),
                    vec![info, 0],
                    int(u64::from(shndx), 2),
                    word(0x1000),
                    word(size),
                ]
                .concat()
            } else {
                [
                    int(name, 4),
                    word(0x1000),
                    word(size),
                    vec![info, 0],
                    int(u64::from(shndx), 2),
                ]
                .concat()
            }
        };
        let symtab = [
            sym(0, 0, 0, 0),
            sym(yn[0], STT_FILE, 0xfff1, 0),
            sym(yn[1], 0x10 | STT_FUNC, 1, 42),
            sym(yn[2], 0x10 | STT_FUNC, 0, 0),
        ]
        .concat();
        let symtab_off = strtab_off + strtab.len() as u64;
        let debug_off = symtab_off + symtab.len() as u64;
        let shoff = debug_off + 4;
        let total = shoff + 6 * shent as u64;

        let phdr = |kind: u32, flags: u32, off: u64, size: u64| -> Vec<u8> {
            let k = int(u64::from(kind), 4);
            let f = int(u64::from(flags), 4);
            if is_64 {
                [
                    k,
                    f,
                    word(off),
                    word(off),
                    word(off),
                    word(size),
                    word(size),
                    word(8),
                ]
                .concat()
            } else {
                [
                    k,
                    word(off),
                    word(off),
                    word(off),
                    word(size),
                    word(size),
                    f,
                    word(4),
                ]
                .concat()
            }
        };
        let shdr =
            |name: u64, kind: u32, off: u64, size: u64, link: u32, entsize: u64| -> Vec<u8> {
                let (n, k, l) = (
                    int(name, 4),
                    int(u64::from(kind), 4),
                    int(u64::from(link), 4),
                );
                let fields = [word(0), word(0), word(off), word(size)];
                [
                    vec![n, k],
                    fields.to_vec(),
                    vec![l, int(0, 4), word(1), word(entsize)],
                ]
                .concat()
                .concat()
            };
        let header = [
            b"\x7fELF".to_vec(),
            vec![
                if is_64 { 2 } else { 1 },
                if big_endian { 2 } else { 1 },
                1,
                0,
            ],
            vec![0; 8],
            int(u64::from(ET_DYN), 2),
            int(62, 2),
            int(1, 4),
            word(0),
            word(ehsize as u64),
            word(shoff),
            int(0, 4),
            int(ehsize as u64, 2),
            int(phent as u64, 2),
            int(3, 2),
            int(shent as u64, 2),
            int(6, 2),
            int(1, 2),
        ]
        .concat();
        assert_eq!(header.len(), ehsize, "header layout");
        let out = [
            header,
            phdr(PT_LOAD, 5, 0, total),
            phdr(PT_GNU_STACK, 6, 0, 0),
            phdr(PT_DYNAMIC, 6, dyn_off, dynamic.len() as u64),
            dynstr.clone(),
            dynamic,
            shstr.clone(),
            strtab.clone(),
            symtab.clone(),
            vec![1, 2, 3, 4],
            shdr(0, 0, 0, 0, 0, 0),
            shdr(sn[0], 3, shstr_off, shstr.len() as u64, 0, 0),
            shdr(
                sn[1],
                SHT_SYMTAB,
                symtab_off,
                symtab.len() as u64,
                3,
                syment,
            ),
            shdr(sn[2], 3, strtab_off, strtab.len() as u64, 0, 0),
            shdr(sn[3], 3, dynstr_off, dynstr.len() as u64, 0, 0),
            shdr(sn[4], 1, debug_off, 4, 0, 0),
        ]
        .concat();
        assert_eq!(out.len() as u64, total, "file layout");
        out
    }

    /// What the reader found, one fact per line, for comparing against expectations.
    fn summary(e: &Elf) -> String {
        let mut s = format!("type {} machine {}\n", e.file_type, e.machine);
        for seg in &e.segments {
            s += &format!("segment {:#x} flags {}\n", seg.kind, seg.flags);
        }
        s += &format!(
            "needed {:?} flags_1 {:#x}\n",
            e.needed,
            e.dyn_value(DT_FLAGS_1).unwrap_or(0)
        );
        let names: Vec<&str> = e.sections.iter().map(|x| x.name.as_str()).collect();
        s += &format!("sections {names:?}\n");
        for y in &e.symbols {
            s += &format!(
                "symbol {:?} kind {} size {} defined {}\n",
                y.name, y.kind, y.size, y.defined
            );
        }
        s
    }

    #[test]
    fn reads_all_classes_and_byte_orders() {
        let expected = "\
type 3 machine 62
segment 0x1 flags 5
segment 0x6474e551 flags 6
segment 0x2 flags 6
needed [\"libc.so.6\"] flags_1 0x8000001
sections [\"\", \".shstrtab\", \".symtab\", \".strtab\", \".dynstr\", \".debug_info\"]
symbol \"\" kind 0 size 0 defined false
symbol \"a.c\" kind 4 size 0 defined true
symbol \"main\" kind 2 size 42 defined true
symbol \"__stack_chk_fail\" kind 2 size 0 defined false
";
        for (is_64, be) in [(false, false), (false, true), (true, false), (true, true)] {
            let e = Elf::parse(&build(is_64, be)).expect("the built image is valid");
            assert_eq!((e.is_64, e.big_endian), (is_64, be));
            assert_eq!(summary(&e), expected, "64-bit {is_64}, big-endian {be}");
            assert_eq!(e.debug_sections().count(), 1);
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for (is_64, be) in [(false, false), (true, true)] {
            let full = build(is_64, be);
            for len in 0..full.len() {
                assert!(
                    Elf::parse(&full[..len]).is_err(),
                    "prefix of {len} bytes parsed"
                );
            }
        }
    }

    #[test]
    fn broken_headers_give_errors_with_context() {
        let good = build(true, false);
        let patch = |at: usize, bytes: &[u8]| {
            let mut v = good.clone();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            v
        };
        let cases: &[(Vec<u8>, &str)] = &[
            (Vec::new(), "not an ELF file"),
            (b"\x7fELF\x02".to_vec(), "truncated ELF identification"),
            (patch(4, &[3]), "unsupported ELF class 3"),
            (patch(5, &[9]), "unsupported ELF data encoding 9"),
            (good[..40].to_vec(), "reading the ELF header"),
            (
                patch(40, &[0xff; 8]),
                "reading section headers: offset 0xffffffffffffffff",
            ),
            (patch(58, &[7, 0]), "section header size 7 (expected 64)"),
            (patch(54, &[9, 0]), "program header size 9 (expected 56)"),
            (patch(60, &[0xff, 0x7f]), "reading section headers: bytes"),
        ];
        for (input, want) in cases {
            let err = format!("{:#}", Elf::parse(input).expect_err(want));
            assert!(err.contains(want), "expected {want:?} in {err:?}");
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        // Every single-byte corruption of a valid image must come back as a value; those
        // that hit an offset or size must be errors.
        let good = build(true, false);
        let mut errors = 0;
        for i in 0..good.len() {
            let mut v = good.clone();
            v[i] = 0xff;
            if Elf::parse(&v).is_err() {
                errors += 1;
            }
        }
        assert!(errors > 50, "only {errors} corruptions were detected");
        // Deterministic garbage after a valid identification.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..500 {
            let mut v = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
            for _ in 0..(n % 200) {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                v.push((x >> 56) as u8);
            }
            assert!(Elf::parse(&v).is_err(), "garbage {n} parsed");
        }
    }
}
