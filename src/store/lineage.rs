//! Where a stream's events are: the pieces a range of its versions is read from. A stream's
//! own events are in the main file, those up to `archived_upto` in the archive; a stream
//! that continues another (a fork) reads its versions up to the fork from that stream, as
//! that stream keeps them (its archive included), so a shared prefix is stored once.

use super::{MAX_LINEAGE, Store};
use crate::error::{Error, Result};
use crate::model::{StreamId, StreamInfo};

/// Versions `from..=to` of a stream, all stored as `stream_id`'s rows in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    /// Whose rows they are: the stream read, or a stream it continues.
    pub stream_id: StreamId,
    /// Whether they are in the archive.
    pub archive: bool,
    /// The first version.
    pub from: u64,
    /// The last version.
    pub to: u64,
    /// Whether they are the stream's own rows (not those of a stream it continues).
    pub own: bool,
}

impl Piece {
    /// The table the rows are in.
    pub fn table(&self) -> &'static str {
        if self.archive {
            "archive.events"
        } else {
            "main.events"
        }
    }
}

impl Store {
    /// The pieces versions `from..=to` of `stream` are read from, oldest first; an archived
    /// piece only where the archive is there to read (else an error naming it).
    pub(super) fn pieces(&self, stream: &StreamInfo, from: u64, to: u64) -> Result<Vec<Piece>> {
        let mut out = Vec::new();
        self.push_pieces(stream, from.max(1), to, true, 0, &mut out)?;
        Ok(out)
    }

    fn push_pieces(
        &self,
        stream: &StreamInfo,
        from: u64,
        to: u64,
        own: bool,
        depth: usize,
        out: &mut Vec<Piece>,
    ) -> Result<()> {
        if from > to {
            return Ok(());
        }
        let mut from = from;
        if let Some((_, fork)) = stream.base {
            if from <= fork {
                if depth >= MAX_LINEAGE {
                    return Err(Error::Input(format!(
                        "stream {:?} continues streams more than {MAX_LINEAGE} deep: the file's lineage loops",
                        stream.name
                    )));
                }
                if let Some((base, _)) = self.base_of(stream)? {
                    self.push_pieces(&base, from, to.min(fork), false, depth + 1, out)?;
                }
            }
            from = from.max(fork + 1);
        }
        if from <= stream.archived_upto.min(to) {
            self.require_archive(stream)?;
            out.push(Piece {
                stream_id: stream.id,
                archive: true,
                from,
                to: stream.archived_upto.min(to),
                own,
            });
        }
        let from = from.max(stream.archived_upto + 1);
        if from <= to {
            out.push(Piece {
                stream_id: stream.id,
                archive: false,
                from,
                to,
                own,
            });
        }
        Ok(())
    }

    /// The streams `stream` continues, nearest first, each with the last version it shares
    /// with them (a stream its base continues shares no more than its base does).
    pub fn bases(&self, stream: &StreamInfo) -> Result<Vec<(StreamInfo, u64)>> {
        let mut out: Vec<(StreamInfo, u64)> = Vec::new();
        if stream.base.is_none() {
            return Ok(out);
        }
        let mut upto = u64::MAX;
        let mut current = stream.clone();
        while let Some((base, fork)) = self.base_of(&current)? {
            if out.len() >= MAX_LINEAGE {
                return Err(Error::Input(format!(
                    "stream {:?} continues streams more than {MAX_LINEAGE} deep: the file's lineage loops",
                    stream.name
                )));
            }
            upto = upto.min(fork);
            out.push((base.clone(), upto));
            current = base;
        }
        Ok(out)
    }

    /// The one piece that holds `version` of `stream`, if any does.
    pub(super) fn piece_at(&self, stream: &StreamInfo, version: u64) -> Result<Option<Piece>> {
        Ok(self.pieces(stream, version, version)?.into_iter().next())
    }
}
