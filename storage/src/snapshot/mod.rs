//! Shard snapshots: a point-in-time dump of one shard's delivery state (tenants,
//! streams, dedupe keys, audit checkpoints) with the ranges of its messages and audit
//! records, and its installation.
//!
//! A snapshot costs what the shard's state costs, not what its retained history
//! costs: messages and audit records travel as `RecordRange`s (`ranges`), and the
//! receiver fetches only the part of each range it lacks before installing — a
//! follower that fell behind by a minute fetches a minute of messages, whatever the
//! retention.
//!
//! File format: magic `PIXSNAP3`, then a raw deflate stream (fast level) of entries,
//! closed by the byte `0xFF`:
//! - a record: `cf index (u8, in columns::STATE) ‖ key length (u32 BE) ‖ key ‖ value
//!   length (u32 BE) ‖ value`;
//! - a range: `0xFE ‖ set (u8) ‖ ISPB (8 bytes) ‖ first (u64 BE) ‖ last (u64 BE)`.
//!
//! Entries of one ISPB are contiguous. `PIXSNAP2` (compressed) and `PIXSNAP1`
//! (uncompressed) files — records only, messages and audit records included — still
//! install. Raft metadata (last applied, membership) travels beside the file, owned
//! by the `raft` crate.

mod install;
pub mod ranges;

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use crate::error::{Error, Result};
use crate::{Ispb, Store, columns, keys};
pub use ranges::{RecordPage, RecordRange, RecordSet, missing, read_page, write_page};

const MAGIC: &[u8; 8] = b"PIXSNAP3";
/// Records only, compressed: written before ranges existed, still read.
const MAGIC_RECORDS: &[u8; 8] = b"PIXSNAP2";
/// Records only, uncompressed: the first format, still read.
const MAGIC_UNCOMPRESSED: &[u8; 8] = b"PIXSNAP1";
const RANGE: u8 = 0xFE;
const END: u8 = 0xFF;
/// Largest key or value a snapshot record may carry (a message is ≤ a few MiB).
const MAX_FIELD: u32 = 64 << 20;

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportCount {
    /// State records copied into the file.
    pub records: u64,
    /// Ranges named instead of copied.
    pub ranges: u64,
}

/// Dumps the state of `ispbs` as of one RocksDB snapshot into `out`. `taken` runs
/// right after the point-in-time view exists, so the caller can let new writes
/// proceed while the dump goes on.
pub fn export_shard<W: Write>(store: &Store, ispbs: &[Ispb], taken: impl FnOnce(), out: &mut W) -> Result<ExportCount> {
    let db = store.db();
    let view = db.snapshot();
    taken();
    out.write_all(MAGIC)?;
    let mut out = DeflateEncoder::new(out, Compression::fast());
    let out = &mut out;
    let mut count = ExportCount::default();
    for ispb in ispbs {
        let prefix = ispb.as_bytes();
        for (index, name) in columns::STATE.iter().enumerate() {
            let ranged: Vec<RecordSet> = RecordSet::ALL.into_iter().filter(|s| s.cf() == *name).collect();
            let mut iter = view.raw_iterator_cf(store.cf(name)?);
            iter.seek(prefix);
            while let Some(key) = iter.key().filter(|k| k.starts_with(prefix)) {
                if let Some(set) = ranged.iter().copied().find(|s| key.starts_with(&s.prefix(ispb))) {
                    if let Some((first, last)) = ranges::held_run(store, &view, set, ispb)? {
                        write_range(out, &RecordRange { set, ispb: *ispb, first, last })?;
                        count.ranges += 1;
                    }
                    iter.seek(keys::prefix_end(&set.prefix(ispb)));
                    continue;
                }
                out.write_all(&[index as u8])?;
                write_field(out, key)?;
                write_field(out, iter.value().unwrap_or_default())?;
                count.records += 1;
                iter.next();
            }
            iter.status()?;
        }
    }
    out.write_all(&[END])?;
    out.try_finish()?;
    out.flush()?;
    Ok(count)
}

/// Every range `input` (a whole snapshot file) names.
pub fn read_ranges<R: Read>(input: &mut R) -> Result<Vec<RecordRange>> {
    let mut ranges = Vec::new();
    for_each_entry(input, |entry| {
        if let Entry::Range(range) = entry {
            ranges.push(range);
        }
        Ok(())
    })?;
    Ok(ranges)
}

/// One entry of a snapshot file.
enum Entry {
    Record { cf: &'static str, key: Vec<u8>, value: Vec<u8> },
    Range(RecordRange),
}

impl Entry {
    fn ispb(&self) -> Result<Ispb> {
        match self {
            Entry::Range(range) => Ok(range.ispb),
            Entry::Record { key, .. } => key
                .get(..8)
                .and_then(|p| <[u8; 8]>::try_from(p).ok())
                .and_then(Ispb::from_bytes)
                .ok_or_else(|| Error::Snapshot("record key without an ISPB prefix".into())),
        }
    }
}

/// Reads the snapshot file `input` entry by entry, in file order.
fn for_each_entry<R: Read>(input: &mut R, mut each: impl FnMut(Entry) -> Result<()>) -> Result<()> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic)?;
    let mut inflated;
    let input: &mut dyn Read = match &magic {
        m if m == MAGIC || m == MAGIC_RECORDS => {
            inflated = DeflateDecoder::new(input);
            &mut inflated
        }
        m if m == MAGIC_UNCOMPRESSED => input,
        _ => return Err(Error::Snapshot("not a pixstream snapshot".into())),
    };
    loop {
        let mut tag = [0u8; 1];
        input.read_exact(&mut tag)?;
        let entry = match tag[0] {
            END => return Ok(()),
            RANGE if magic == *MAGIC => Entry::Range(read_range(input)?),
            index => {
                let cf = columns::STATE
                    .get(usize::from(index))
                    .ok_or_else(|| Error::Snapshot(format!("unknown entry tag {index}")))?;
                Entry::Record { cf, key: read_field(input)?, value: read_field(input)? }
            }
        };
        each(entry)?;
    }
}

fn write_range<W: Write>(out: &mut W, range: &RecordRange) -> Result<()> {
    out.write_all(&[RANGE, range.set as u8])?;
    out.write_all(range.ispb.as_bytes())?;
    out.write_all(&range.first.to_be_bytes())?;
    out.write_all(&range.last.to_be_bytes())?;
    Ok(())
}

fn read_range<R: Read + ?Sized>(input: &mut R) -> Result<RecordRange> {
    let mut bytes = [0u8; 1 + 8 + 8 + 8];
    input.read_exact(&mut bytes)?;
    let set =
        RecordSet::from_tag(bytes[0]).ok_or_else(|| Error::Snapshot(format!("unknown record set {}", bytes[0])))?;
    let ispb = <[u8; 8]>::try_from(&bytes[1..9])
        .ok()
        .and_then(Ispb::from_bytes)
        .ok_or_else(|| Error::Snapshot("range without a valid ISPB".into()))?;
    let number = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let (first, last) = (number(9), number(17));
    if first > last {
        return Err(Error::Snapshot(format!("range {first}..={last} of {ispb} is backwards")));
    }
    Ok(RecordRange { set, ispb, first, last })
}

fn write_field<W: Write>(out: &mut W, bytes: &[u8]) -> Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| Error::Snapshot("record too large".into()))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)?;
    Ok(())
}

fn read_field<R: Read + ?Sized>(input: &mut R) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FIELD {
        return Err(Error::Snapshot(format!("record field of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(buf)
}
