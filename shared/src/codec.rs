//! The canonical byte encoding of a [`Bundle`]: compact, deterministic (same bundle, same
//! bytes) and strict (trailing bytes, unknown tags, bad UTF-8 and truncation are errors).
//!
//! Layout: the magic `VGOB`, the format version (u16, little endian), then the fields in
//! declaration order. Integers are LEB128 varints (signed ones zig-zag encoded), strings and
//! lists are a varint length followed by their items, booleans and tags are one byte.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::bundle::{Attr, AttrValue, Bundle, FORMAT_VERSION, Resource, ResourceKind, Sensitive};

const MAGIC: &[u8; 4] = b"VGOB";

/// Why bytes could not be decoded into a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset where decoding stopped.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed bundle at byte {}: {}", self.offset, self.what)
    }
}

/// Encodes a bundle canonically.
pub fn encode(bundle: &Bundle) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(256));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    w.str(&bundle.node);
    w.str(&bundle.policy);
    w.bool(bundle.observe);
    w.uint(u64::from(bundle.interval_secs));
    w.uint(bundle.resources.len() as u64);
    for r in &bundle.resources {
        w.0.push(r.kind.tag());
        w.str(&r.name);
        w.uint(r.attrs.len() as u64);
        for a in &r.attrs {
            w.str(&a.key);
            w.value(&a.value);
        }
        w.opt_str(r.when.as_deref());
        w.strs(&r.depends_on);
        w.strs(&r.notify);
        w.strs(&r.compliance);
        w.bool(r.dangerous);
        w.str(&r.origin);
        w.str(&r.module);
        w.opt_str(r.skip.as_deref());
    }
    w.0
}

/// Decodes a bundle, refusing anything that [`encode`] would not have produced.
pub fn decode(bytes: &[u8]) -> Result<Bundle, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(4)? != MAGIC {
        return Err(r.err_at(0, "not a vigo bundle (bad magic)"));
    }
    let version = r.take(2)?;
    if u16::from_le_bytes([version[0], version[1]]) != FORMAT_VERSION {
        return Err(r.err_at(4, "unsupported bundle format version"));
    }
    let node = r.str()?;
    let policy = r.str()?;
    let observe = r.bool()?;
    let interval_secs =
        u32::try_from(r.uint()?).map_err(|_| r.err("interval does not fit 32 bits"))?;
    let count = r.len()?;
    let mut resources = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let tag = r.byte()?;
        let kind = ResourceKind::from_tag(tag).ok_or_else(|| r.err("unknown resource type"))?;
        let name = r.str()?;
        let nattrs = r.len()?;
        let mut attrs: Vec<Attr> = Vec::with_capacity(nattrs.min(64));
        for _ in 0..nattrs {
            let key = r.str()?;
            if attrs.last().is_some_and(|prev| prev.key >= key) {
                return Err(r.err("attributes not sorted or not unique"));
            }
            let value = r.value()?;
            attrs.push(Attr { key, value });
        }
        resources.push(Resource {
            kind,
            name,
            attrs,
            when: r.opt_str()?,
            depends_on: r.strs()?,
            notify: r.strs()?,
            compliance: r.strs()?,
            dangerous: r.bool()?,
            origin: r.str()?,
            module: r.str()?,
            skip: r.opt_str()?,
        });
    }
    if r.pos != bytes.len() {
        return Err(r.err("trailing bytes after the bundle"));
    }
    Ok(Bundle {
        node,
        policy,
        observe,
        interval_secs,
        resources,
    })
}

const TAG_STR: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_BOOL: u8 = 2;
const TAG_LIST: u8 = 3;
const TAG_SENSITIVE: u8 = 4;
const TAG_SEALED: u8 = 5;

struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    fn strs(&mut self, items: &[String]) {
        self.uint(items.len() as u64);
        for s in items {
            self.str(s);
        }
    }

    fn value(&mut self, v: &AttrValue) {
        match v {
            AttrValue::Str(s) => {
                self.0.push(TAG_STR);
                self.str(s);
            }
            AttrValue::Int(i) => {
                self.0.push(TAG_INT);
                self.int(*i);
            }
            AttrValue::Bool(b) => {
                self.0.push(TAG_BOOL);
                self.bool(*b);
            }
            AttrValue::List(items) => {
                self.0.push(TAG_LIST);
                self.strs(items);
            }
            AttrValue::Sensitive(s) => {
                self.0.push(TAG_SENSITIVE);
                self.str(s.expose());
            }
            AttrValue::Sealed(b) => {
                self.0.push(TAG_SEALED);
                self.uint(b.len() as u64);
                self.0.extend_from_slice(b);
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what,
        }
    }

    fn err_at(&self, offset: usize, what: &'static str) -> DecodeError {
        DecodeError { offset, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(self.err("truncated")),
        }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                // Canonical form: no redundant trailing zero groups.
                if byte == 0 && shift != 0 {
                    return Err(self.err("non-canonical varint"));
                }
                return Ok(v);
            }
        }
        Err(self.err("varint too long"))
    }

    fn int(&mut self) -> Result<i64, DecodeError> {
        let u = self.uint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.uint()?;
        // Every item takes at least one byte, so a count beyond the remaining bytes is a lie;
        // refusing it early keeps a hostile length from reserving memory.
        let left = (self.bytes.len() - self.pos) as u64;
        if n > left {
            return Err(self.err("length exceeds the remaining bytes"));
        }
        Ok(n as usize)
    }

    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.err("invalid boolean")),
        }
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let start = self.pos;
        let raw = self.take(n)?;
        match core::str::from_utf8(raw) {
            Ok(s) => Ok(String::from(s)),
            Err(_) => Err(self.err_at(start, "string is not valid UTF-8")),
        }
    }

    fn opt_str(&mut self) -> Result<Option<String>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => Ok(Some(self.str()?)),
            _ => Err(self.err("invalid option tag")),
        }
    }

    fn strs(&mut self) -> Result<Vec<String>, DecodeError> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            out.push(self.str()?);
        }
        Ok(out)
    }

    fn value(&mut self) -> Result<AttrValue, DecodeError> {
        match self.byte()? {
            TAG_STR => Ok(AttrValue::Str(self.str()?)),
            TAG_INT => Ok(AttrValue::Int(self.int()?)),
            TAG_BOOL => Ok(AttrValue::Bool(self.bool()?)),
            TAG_LIST => Ok(AttrValue::List(self.strs()?)),
            TAG_SENSITIVE => Ok(AttrValue::Sensitive(Sensitive::new(self.str()?))),
            TAG_SEALED => {
                let n = self.len()?;
                Ok(AttrValue::Sealed(self.take(n)?.to_vec()))
            }
            _ => Err(self.err("unknown attribute value tag")),
        }
    }
}
