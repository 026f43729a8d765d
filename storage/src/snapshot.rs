//! Shard snapshots: a point-in-time dump of every state record of one shard's ISPBs
//! (tenants, streams, dedupe keys, messages) into a file, and its installation.
//!
//! File format: magic `PIXSNAP2`, then a raw deflate stream (fast level: message
//! bodies are XML and shrink several times) of records `cf index (u8) ‖ key length
//! (u32 BE) ‖ key ‖ value length (u32 BE) ‖ value`, closed by the byte `0xFF`.
//! Records of one ISPB are contiguous. `PIXSNAP1` files (the same records,
//! uncompressed) still install. Raft metadata (last applied, membership) travels
//! beside the file, owned by the `raft` crate.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use rocksdb::{IteratorMode, WriteBatch};

use crate::error::{Error, Result};
use crate::{Ispb, ShardMachine, Store, columns, keys};

const MAGIC: &[u8; 8] = b"PIXSNAP2";
/// The uncompressed format written before, still read.
const MAGIC_UNCOMPRESSED: &[u8; 8] = b"PIXSNAP1";
const END: u8 = 0xFF;
/// Largest key or value a snapshot record may carry (a message is ≤ a few MiB).
const MAX_FIELD: u32 = 64 << 20;

/// Dumps the state of `ispbs` as of one RocksDB snapshot into `out`. `taken` runs
/// right after the point-in-time view exists, so the caller can let new writes
/// proceed while the dump goes on.
pub fn export_shard<W: Write>(store: &Store, ispbs: &[Ispb], taken: impl FnOnce(), out: &mut W) -> Result<u64> {
    let db = store.db();
    let view = db.snapshot();
    taken();
    out.write_all(MAGIC)?;
    let mut out = DeflateEncoder::new(out, Compression::fast());
    let out = &mut out;
    let mut records = 0u64;
    for ispb in ispbs {
        let prefix = ispb.as_bytes();
        for (index, name) in columns::STATE.iter().enumerate() {
            let cf = store.cf(name)?;
            let mode = IteratorMode::From(prefix, rocksdb::Direction::Forward);
            for item in view.iterator_cf(cf, mode) {
                let (key, value) = item?;
                if !key.starts_with(prefix) {
                    break;
                }
                out.write_all(&[index as u8])?;
                write_field(out, &key)?;
                write_field(out, &value)?;
                records += 1;
            }
        }
    }
    out.write_all(&[END])?;
    out.try_finish()?;
    out.flush()?;
    Ok(records)
}

impl ShardMachine {
    /// Replaces the shard's state with the snapshot read from `input`, recording it
    /// in `batch` (the caller adds Raft metadata, writes, then calls `reload`).
    pub fn install_snapshot<R: Read>(&mut self, input: &mut R, batch: &mut WriteBatch) -> Result<u64> {
        let store = self.store().clone();
        let mut cleared: BTreeSet<Ispb> = BTreeSet::new();
        for tenant in self.tenants() {
            clear_ispb(&store, &tenant.ispb, batch)?;
            cleared.insert(tenant.ispb);
        }
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        let mut inflated;
        let input: &mut dyn Read = match &magic {
            m if m == MAGIC => {
                inflated = DeflateDecoder::new(input);
                &mut inflated
            }
            m if m == MAGIC_UNCOMPRESSED => input,
            _ => return Err(Error::Snapshot("not a pixstream snapshot".into())),
        };
        let mut records = 0u64;
        loop {
            let mut tag = [0u8; 1];
            input.read_exact(&mut tag)?;
            if tag[0] == END {
                break;
            }
            let name = columns::STATE
                .get(usize::from(tag[0]))
                .ok_or_else(|| Error::Snapshot(format!("unknown column index {}", tag[0])))?;
            let key = read_field(input)?;
            let value = read_field(input)?;
            let ispb = key
                .get(..8)
                .and_then(|p| <[u8; 8]>::try_from(p).ok())
                .and_then(Ispb::from_bytes)
                .ok_or_else(|| Error::Snapshot("record key without an ISPB prefix".into()))?;
            if cleared.insert(ispb) {
                clear_ispb(&store, &ispb, batch)?;
            }
            batch.put_cf(store.cf(name)?, key, value);
            records += 1;
        }
        Ok(records)
    }
}

/// Deletes every state record of one ISPB.
fn clear_ispb(store: &Store, ispb: &Ispb, batch: &mut WriteBatch) -> Result<()> {
    let end = keys::prefix_end(ispb.as_bytes());
    for name in columns::STATE {
        batch.delete_range_cf(store.cf(name)?, ispb.as_bytes().as_slice(), end.as_slice());
    }
    Ok(())
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
