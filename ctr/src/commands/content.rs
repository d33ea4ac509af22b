//! `ctr content ingest|get|ls|label|rm|active`.
//!
//! Table output goes to a buffer the caller prints even when the command
//! fails half-way (containerd's ctr prints what it has, header included);
//! `get` streams the blob straight to stdout and `rm` prints as it goes.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail};
use rcontainerd_api::client::{os_error_text, NamespacedChannel};
use rcontainerd_api::services::content::content_client::ContentClient;
use rcontainerd_api::services::content::{
    DeleteContentRequest, Info, InfoRequest, ListContentRequest, ListStatusesRequest,
    ReadContentRequest, Status as IngestStatus, UpdateRequest, WriteAction, WriteContentRequest,
    WriteContentResponse,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::cli::{
    ContentActive, ContentCommand, ContentDigests, ContentGet, ContentIngest, ContentList,
    ObjectWithLabels,
};
use crate::errors::RpcError;
use crate::labels::{joined, label_update, parse_labels};
use crate::log;
use crate::tabwriter::TabWriter;
use crate::units::{human_duration, human_size};
use rcontainerd_pkg::digest;

type Client = ContentClient<NamespacedChannel>;

/// How much of stdin goes into one Write message (containerd's ctr copies
/// through a buffer of the same size).
const INGEST_CHUNK: usize = 1 << 20;

/// First and last pause, in milliseconds, before asking again for a ref
/// another writer holds; the pause doubles each time, with jitter.
const LOCK_RETRY_START_MS: u64 = 16;
const LOCK_RETRY_MAX_MS: u64 = 2048;

/// The path Go names standard input by, which appears in error messages.
const STDIN_NAME: &str = "/dev/stdin";

/// Checks the arguments containerd's ctr checks before it dials.
pub fn check_before_dial(command: &ContentCommand) -> anyhow::Result<()> {
    match command {
        ContentCommand::Ingest(args) => {
            if !args.expected_digest.is_empty() {
                digest::validate(&args.expected_digest)?;
            }
            if args.reference.as_deref().unwrap_or_default().is_empty() {
                bail!("must specify a transaction reference");
            }
        }
        ContentCommand::Get(args) => digest::validate(args.digest.as_deref().unwrap_or_default())?,
        _ => {}
    }
    Ok(())
}

/// Runs a content command, writing table output to `out`.
pub async fn run(
    channel: NamespacedChannel,
    command: &ContentCommand,
    out: &mut String,
) -> anyhow::Result<()> {
    let mut client = ContentClient::new(channel);
    match command {
        ContentCommand::Active(args) => active(&mut client, args, out).await,
        ContentCommand::Delete(args) => delete(&mut client, args).await,
        ContentCommand::Get(args) => get(&mut client, args).await,
        ContentCommand::Ingest(args) => ingest(&mut client, args).await,
        ContentCommand::List(args) => list(&mut client, args, out).await,
        ContentCommand::Label(args) => label(&mut client, args, out).await,
        // main.rs runs `content fetch` (commands::image_pull::fetch_content).
        ContentCommand::Fetch(_) => Ok(()),
    }
}

/// The time since `at`; none at all counts as Go's zero time (the longest
/// duration Go can express), a time in the future as no time.
fn age_since(at: Option<&prost_types::Timestamp>) -> Duration {
    let longest = Duration::from_nanos(i64::MAX as u64);
    let Some(at) = at else {
        return longest;
    };
    let since_epoch = match u64::try_from(at.seconds) {
        Ok(seconds) => Duration::new(seconds, u32::try_from(at.nanos).unwrap_or(0)),
        Err(_) => return longest,
    };
    let Some(then) = SystemTime::UNIX_EPOCH.checked_add(since_epoch) else {
        return Duration::ZERO;
    };
    SystemTime::now()
        .duration_since(then)
        .unwrap_or(Duration::ZERO)
        .min(longest)
}

async fn active(client: &mut Client, args: &ContentActive, out: &mut String) -> anyhow::Result<()> {
    // containerd's ctr always sends the argument as one filter, even empty.
    let request = ListStatusesRequest {
        filters: vec![args.regexp.clone().unwrap_or_default()],
    };
    let statuses = client
        .list_statuses(request)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .statuses;
    out.push_str(&active_table(&statuses));
    Ok(())
}

/// `REF SIZE AGE`, aligned with tabs.
pub fn active_table(statuses: &[IngestStatus]) -> String {
    let mut writer = TabWriter::new(1, 8, 1, '\t');
    writer.write_str("REF\tSIZE\tAGE\t\n");
    for status in statuses {
        writer.write_str(&format!(
            "{}\t{}\t{}\t\n",
            status.r#ref,
            human_size(status.offset),
            human_duration(age_since(status.started_at.as_ref()))
        ));
    }
    writer.finish()
}

async fn list(client: &mut Client, args: &ContentList, out: &mut String) -> anyhow::Result<()> {
    let mut table = (!args.quiet).then(ContentTable::new);
    let result = async {
        let request = ListContentRequest {
            filters: args.filters.clone(),
        };
        let mut stream = client
            .list(request)
            .await
            .map_err(RpcError::from)?
            .into_inner();
        while let Some(response) = stream.message().await.map_err(RpcError::from)? {
            for info in &response.info {
                match &mut table {
                    Some(table) => table.add(info),
                    None => {
                        out.push_str(&info.digest);
                        out.push('\n');
                    }
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    // The table, header included, is printed even when listing failed.
    if let Some(table) = table {
        out.push_str(&table.finish());
    }
    result
}

/// `DIGEST SIZE AGE LABELS`, aligned with tabs; `-` for no labels (sorted
/// here; containerd's ctr prints them in random order).
pub struct ContentTable {
    writer: TabWriter,
}

impl ContentTable {
    pub fn new() -> Self {
        let mut writer = TabWriter::new(1, 8, 1, '\t');
        writer.write_str("DIGEST\tSIZE\tAGE\tLABELS\n");
        Self { writer }
    }

    pub fn add(&mut self, info: &Info) {
        let mut labels = joined(&info.labels);
        if labels.is_empty() {
            labels.push('-');
        }
        self.writer.write_str(&format!(
            "{}\t{}\t{}\t{labels}\n",
            info.digest,
            human_size(info.size),
            human_duration(age_since(info.created_at.as_ref()))
        ));
    }

    pub fn finish(self) -> String {
        self.writer.finish()
    }
}

/// Sets or clears the given labels in one update (no labels: just reads
/// them) and prints the blob's labels afterwards.
async fn label(
    client: &mut Client,
    args: &ObjectWithLabels,
    out: &mut String,
) -> anyhow::Result<()> {
    let digest_text = args.object.clone().unwrap_or_default();
    digest::validate(&digest_text)?;
    let labels = parse_labels(&args.labels);
    let info = if labels.is_empty() {
        blob_info(client, &digest_text).await?
    } else {
        let (labels, update_mask) = label_update(labels);
        let request = UpdateRequest {
            info: Some(Info {
                digest: digest_text.clone(),
                labels,
                ..Info::default()
            }),
            update_mask: Some(update_mask),
        };
        client
            .update(request)
            .await
            .map_err(RpcError::from)?
            .into_inner()
            .info
            .ok_or_else(|| anyhow!("content {digest_text}: the daemon answered without info"))?
    };
    out.push_str(&joined(&info.labels));
    out.push('\n');
    Ok(())
}

async fn blob_info(client: &mut Client, digest_text: &str) -> anyhow::Result<Info> {
    let request = InfoRequest {
        digest: digest_text.to_owned(),
    };
    client
        .info(request)
        .await
        .map_err(RpcError::from)?
        .into_inner()
        .info
        .ok_or_else(|| anyhow!("content {digest_text}: the daemon answered without info"))
}

/// Deletes each blob, printing the digest of each one deleted; a blob that
/// does not exist is skipped silently, other failures are logged, and the
/// first one decides the result.
async fn delete(client: &mut Client, args: &ContentDigests) -> anyhow::Result<()> {
    let mut first_failure: Option<anyhow::Error> = None;
    for arg in &args.digests {
        let outcome = match digest::validate(arg) {
            Err(err) => Err(anyhow!(err)),
            Ok(()) => {
                let request = DeleteContentRequest {
                    digest: arg.clone(),
                };
                match client.delete(request).await {
                    Ok(_) => {
                        println!("{arg}");
                        Ok(())
                    }
                    Err(status) if status.code() == Code::NotFound => Ok(()),
                    Err(status) => Err(anyhow!(RpcError::from(status))),
                }
            }
        };
        if let Err(err) = outcome {
            log::error(&format!("could not delete {arg}"), &err);
            first_failure.get_or_insert(err);
        }
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// Streams the blob to stdout.
async fn get(client: &mut Client, args: &ContentGet) -> anyhow::Result<()> {
    let digest_text = args.digest.clone().unwrap_or_default();
    let info = blob_info(client, &digest_text).await?;
    print_blob(client, &digest_text, info.size).await
}

/// Writes the blob `digest` (`size` bytes) to stdout.
pub async fn print_blob(client: &mut Client, digest: &str, size: i64) -> anyhow::Result<()> {
    if size == 0 {
        return Ok(());
    }
    let request = ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size,
    };
    let mut stream = client
        .read(request)
        .await
        .map_err(RpcError::from)?
        .into_inner();
    let mut stdout = tokio::io::stdout();
    while let Some(response) = stream.message().await.map_err(RpcError::from)? {
        if let Err(err) = stdout.write_all(&response.data).await {
            return Err(stdout_failure(&err));
        }
    }
    if let Err(err) = stdout.flush().await {
        return Err(stdout_failure(&err));
    }
    Ok(())
}

/// A failed write to stdout. When the reader went away (`ctr content get …
/// | head`), ctr ends by SIGPIPE, silently, as containerd's does; other
/// failures are reported.
pub fn stdout_failure(err: &io::Error) -> anyhow::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        use nix::sys::signal::{raise, signal, SigHandler, Signal};
        // SAFETY: the default disposition runs no handler code in this
        // process, so nothing here needs to be async-signal-safe.
        let reset = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
        if reset.is_ok() {
            let _ = raise(Signal::SIGPIPE);
        }
    }
    anyhow!("write /dev/stdout: {}", os_error_text(err))
}

/// A failed exchange on the Write stream: the daemon's error, or the stream
/// ending early (Go's client reports that as `EOF`).
#[derive(Debug)]
enum StreamError {
    Rpc(tonic::Status),
    Ended,
}

impl StreamError {
    fn code(&self) -> Option<Code> {
        match self {
            Self::Rpc(status) => Some(status.code()),
            Self::Ended => None,
        }
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rpc(status) => RpcError::from_status(status).fmt(f),
            Self::Ended => f.write_str("EOF"),
        }
    }
}

impl From<tonic::Status> for StreamError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc(status)
    }
}

/// One open Write stream, used in lock step: every request gets one
/// response before the next is sent.
struct RemoteWriter {
    requests: mpsc::Sender<WriteContentRequest>,
    responses: tonic::Streaming<WriteContentResponse>,
    /// Bytes the daemon holds for the ref; the next write goes here.
    offset: i64,
}

impl RemoteWriter {
    /// Opens a stream for `reference` with a first STAT naming the expected
    /// size and digest, as containerd's client does.
    async fn open(
        client: &mut Client,
        reference: &str,
        total: i64,
        expected: &str,
    ) -> Result<Self, StreamError> {
        let (requests, queue) = mpsc::channel(1);
        let first = WriteContentRequest {
            action: WriteAction::Stat as i32,
            r#ref: reference.to_owned(),
            total,
            expected: expected.to_owned(),
            ..WriteContentRequest::default()
        };
        requests.send(first).await.map_err(|_| StreamError::Ended)?;
        let responses = client.write(ReceiverStream::new(queue)).await?.into_inner();
        let mut writer = Self {
            requests,
            responses,
            offset: 0,
        };
        let response = writer.receive().await?;
        writer.offset = response.offset;
        Ok(writer)
    }

    async fn exchange(
        &mut self,
        request: WriteContentRequest,
    ) -> Result<WriteContentResponse, StreamError> {
        if self.requests.send(request).await.is_err() {
            // The stream is gone; its status says why.
            self.receive().await?;
            return Err(StreamError::Ended);
        }
        self.receive().await
    }

    async fn receive(&mut self) -> Result<WriteContentResponse, StreamError> {
        self.responses.message().await?.ok_or(StreamError::Ended)
    }

    async fn status(&mut self) -> Result<WriteContentResponse, StreamError> {
        self.exchange(WriteContentRequest {
            action: WriteAction::Stat as i32,
            ..WriteContentRequest::default()
        })
        .await
    }

    /// Sends `data` at the current offset and returns how much the daemon
    /// took.
    async fn write(&mut self, data: Vec<u8>) -> Result<i64, StreamError> {
        let offset = self.offset;
        let response = self
            .exchange(WriteContentRequest {
                action: WriteAction::Write as i32,
                offset,
                data: data.into(),
                ..WriteContentRequest::default()
            })
            .await?;
        let taken = response.offset - offset;
        self.offset += taken;
        Ok(taken)
    }

    async fn commit(
        &mut self,
        total: i64,
        expected: &str,
    ) -> Result<WriteContentResponse, StreamError> {
        self.exchange(WriteContentRequest {
            action: WriteAction::Commit as i32,
            total,
            offset: self.offset,
            expected: expected.to_owned(),
            ..WriteContentRequest::default()
        })
        .await
    }

    /// Half-closes the stream and reads what the daemon still sends, so that
    /// it ends the call normally rather than seeing it cancelled.
    async fn close(self) {
        let Self {
            requests,
            mut responses,
            ..
        } = self;
        drop(requests);
        while let Ok(Some(_)) = responses.message().await {}
    }
}

/// Writes stdin to the content store under `reference`, resuming an ingest
/// that already holds data, and commits it with the expected size and
/// digest. Content that already exists counts as success.
async fn ingest(client: &mut Client, args: &ContentIngest) -> anyhow::Result<()> {
    let reference = args.reference.clone().unwrap_or_default();
    let size = args.expected_size;
    let expected = args.expected_digest.as_str();
    let mut writer = match open_when_unlocked(client, &reference, size, expected).await {
        Ok(writer) => writer,
        Err(err) if err.code() == Some(Code::AlreadyExists) => return Ok(()),
        Err(err) => bail!("failed to open writer: {err}"),
    };
    let result = copy_stdin(&mut writer, &reference, size, expected).await;
    writer.close().await;
    result
}

/// Opens the writer, waiting while another writer holds the ref (the daemon
/// answers Unavailable), as containerd's client does.
async fn open_when_unlocked(
    client: &mut Client,
    reference: &str,
    size: i64,
    expected: &str,
) -> Result<RemoteWriter, StreamError> {
    let mut retry_ms = LOCK_RETRY_START_MS;
    loop {
        match RemoteWriter::open(client, reference, size, expected).await {
            Err(err) if err.code() == Some(Code::Unavailable) => {
                let jitter = RandomState::new().build_hasher().finish() % retry_ms;
                tokio::time::sleep(Duration::from_millis(jitter)).await;
                retry_ms = (retry_ms * 2).min(LOCK_RETRY_MAX_MS);
            }
            other => return other,
        }
    }
}

async fn copy_stdin(
    writer: &mut RemoteWriter,
    reference: &str,
    size: i64,
    expected: &str,
) -> anyhow::Result<()> {
    let status = writer
        .status()
        .await
        .map_err(|err| anyhow!("failed to get status: error getting writer status: {err}"))?;
    let resume_at = status.offset;
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|err| anyhow!("cannot use stdin: {}", os_error_text(&err)))?;
    let mut input = std::fs::File::from(stdin);
    if resume_at > 0 {
        if let Err(err) = input.seek(SeekFrom::Start(resume_at as u64)) {
            bail!(
                "unable to resume write to {reference}: failed to seek to offset {resume_at}: seek {STDIN_NAME}: {}",
                os_error_text(&err)
            );
        }
    }
    let mut chunks = read_in_chunks(input);
    let mut copied: i64 = 0;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk
            .map_err(|err| anyhow!("failed to copy: read {STDIN_NAME}: {}", os_error_text(&err)))?;
        let length = chunk.len() as i64;
        let taken = writer
            .write(chunk)
            .await
            .map_err(|err| anyhow!("failed to copy: failed to send write: {err}"))?;
        copied += taken;
        if taken < length {
            bail!("failed to copy: short write");
        }
    }
    if size != 0 && copied < size - resume_at {
        bail!("failed to read expected number of bytes: unexpected EOF");
    }
    let committed = match writer.commit(size, expected).await {
        Ok(response) => response,
        Err(err) if err.code() == Some(Code::AlreadyExists) => return Ok(()),
        Err(err) => bail!("failed commit on ref {reference:?}: commit failed: {err}"),
    };
    if size != 0 && committed.offset != size {
        bail!(
            "failed commit on ref {reference:?}: unexpected size: {} != {size}",
            committed.offset
        );
    }
    if !expected.is_empty() && committed.digest != expected {
        bail!(
            "failed commit on ref {reference:?}: unexpected digest: {} != {expected}",
            committed.digest
        );
    }
    Ok(())
}

/// Reads `input` on a thread of its own, so that reading overlaps sending,
/// and hands over chunks of [`INGEST_CHUNK`] bytes (the last one shorter);
/// the channel closes at the end of the input or after a read error.
fn read_in_chunks(mut input: std::fs::File) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (chunks, receiver) = mpsc::channel(2);
    std::thread::spawn(move || loop {
        let mut chunk = vec![0u8; INGEST_CHUNK];
        let mut filled = 0;
        while filled < INGEST_CHUNK {
            match input.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    let _ = chunks.blocking_send(Err(err));
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        chunk.truncate(filled);
        let at_end = filled < INGEST_CHUNK;
        if chunks.blocking_send(Ok(chunk)).is_err() || at_end {
            return;
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const HELLO: &str = "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

    fn now_minus(seconds: i64) -> Option<prost_types::Timestamp> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Some(prost_types::Timestamp {
            seconds: now - seconds,
            nanos: 0,
        })
    }

    /// containerd 1.6.20's `ctr content ls`, tabs and all.
    #[test]
    fn list_matches_containerds_layout() {
        let mut table = ContentTable::new();
        table.add(&Info {
            digest: HELLO.into(),
            size: 6,
            created_at: now_minus(12),
            updated_at: None,
            labels: HashMap::from([("x&y".into(), "<z>".into()), ("b".into(), "true".into())]),
        });
        table.add(&Info {
            digest: HELLO.replace("5891", "0000"),
            size: 1234,
            created_at: now_minus(0),
            updated_at: None,
            labels: HashMap::new(),
        });
        let expected = format!(
            "DIGEST\t\t\t\t\t\t\t\t\tSIZE\tAGE\t\t\tLABELS\n\
             {HELLO}\t6B\t12 seconds\t\tb=true,x&y=<z>\n\
             {}\t1.234kB\tLess than a second\t-\n",
            HELLO.replace("5891", "0000")
        );
        assert_eq!(table.finish(), expected);
        assert_eq!(ContentTable::new().finish(), "DIGEST\tSIZE\tAGE\tLABELS\n");
    }

    #[test]
    fn active_matches_containerds_layout() {
        let status = |reference: &str, offset, started| IngestStatus {
            r#ref: reference.into(),
            offset,
            started_at: started,
            ..IngestStatus::default()
        };
        let statuses = [
            status("r4", 3, now_minus(12)),
            status("r6", 3, now_minus(0)),
        ];
        let expected =
            "REF\tSIZE\tAGE\t\t\t\nr4\t3B\t12 seconds\t\t\nr6\t3B\tLess than a second\t\n";
        assert_eq!(active_table(&statuses), expected);
        assert_eq!(active_table(&[]), "REF\tSIZE\tAGE\t\n");
    }

    #[test]
    fn ages_of_missing_and_future_times() {
        assert_eq!(human_duration(age_since(None)), "292 years");
        assert_eq!(
            age_since(Some(&prost_types::Timestamp {
                seconds: i64::MAX / 2,
                nanos: 0
            })),
            Duration::ZERO
        );
        let ten_ago = now_minus(10);
        let age = age_since(ten_ago.as_ref());
        assert!(age >= Duration::from_secs(10) && age < Duration::from_secs(12));
    }

    fn ingest_command(reference: Option<&str>, expected: &str) -> ContentCommand {
        ContentCommand::Ingest(ContentIngest {
            expected_size: 0,
            expected_digest: expected.into(),
            reference: reference.map(str::to_owned),
            ignored: Vec::new(),
        })
    }

    #[tokio::test]
    async fn reads_input_in_whole_chunks_through_a_pipe() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let total = 2 * INGEST_CHUNK + 10;
        let feeder = std::thread::spawn(move || {
            use std::io::Write as _;
            // Small writes: a pipe hands them over in small reads.
            let bytes: Vec<u8> = (0..total).map(|index| (index % 251) as u8).collect();
            for piece in bytes.chunks(1000) {
                writer.write_all(piece).unwrap();
            }
        });
        let mut chunks = read_in_chunks(std::fs::File::from(std::os::fd::OwnedFd::from(reader)));
        let mut sizes = Vec::new();
        let mut data = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.unwrap();
            sizes.push(chunk.len());
            data.extend(chunk);
        }
        feeder.join().unwrap();
        assert_eq!(sizes, [INGEST_CHUNK, INGEST_CHUNK, 10]);
        assert!(data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }

    #[tokio::test]
    async fn empty_input_gives_no_chunks() {
        let mut chunks = read_in_chunks(std::fs::File::open("/dev/null").unwrap());
        assert!(chunks.recv().await.is_none());
    }

    #[test]
    fn checks_ingest_and_get_arguments_before_dialling() {
        let message = |command: &ContentCommand| {
            check_before_dial(command)
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default()
        };
        assert_eq!(message(&ingest_command(Some("r"), "")), "");
        assert_eq!(message(&ingest_command(Some("r"), HELLO)), "");
        assert_eq!(
            message(&ingest_command(None, "")),
            "must specify a transaction reference"
        );
        assert_eq!(
            message(&ingest_command(Some(""), "")),
            "must specify a transaction reference"
        );
        // The digest is checked first.
        assert_eq!(
            message(&ingest_command(None, "sha256:abc")),
            "invalid checksum digest length"
        );
        let get = |digest: Option<&str>| {
            ContentCommand::Get(ContentGet {
                digest: digest.map(str::to_owned),
                ignored: Vec::new(),
            })
        };
        assert_eq!(message(&get(None)), "invalid checksum digest format");
        assert_eq!(
            message(&get(Some("md5:00"))),
            "unsupported digest algorithm"
        );
        assert_eq!(message(&get(Some(HELLO))), "");
    }
}
