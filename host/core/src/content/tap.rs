//! Taps on ingests: something above the content store (the differ's early unpack) may see the
//! bytes of an ingest as they are written, to start work on a blob before it is committed.
//!
//! A tap only ever sees one unbroken run from offset 0: a truncate, a failed write, a write
//! whose bytes the host could not hash, or a writer closed before its commit drops the sink, and
//! a sink is told the digest only once the store has committed exactly the bytes it was given
//! under a digest it verified.

/// Decides, per ingest, whether to watch it.
pub trait IngestTap: Send + Sync {
    /// The first write of namespace `namespace`'s ingest `reference` (at offset 0, `first` its
    /// bytes; `total` the client's announced size, 0 when unknown). `None`: not interested.
    fn open(
        &self,
        namespace: &str,
        reference: &str,
        total: i64,
        first: &[u8],
    ) -> Option<Box<dyn TapSink>>;
}

/// The bytes of one ingest, in order. Dropping it without [`TapSink::committed`] means the run
/// broke or the ingest was left uncommitted.
pub trait TapSink: Send {
    /// The next bytes (the first write's included). `false`: stop feeding this sink.
    fn data(&mut self, data: &[u8]) -> bool;
    /// The store committed the bytes given so far as blob `digest`.
    fn committed(self: Box<Self>, digest: &str);
}
