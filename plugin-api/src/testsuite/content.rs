//! The content store conformance suite: containerd's ingest and blob model as seen through
//! [`Store`], [`Writer`] and [`Reader`]. Digests of the test data are precomputed constants, so
//! the suite needs no hash implementation of its own. Restart survival needs two stores on one
//! root and is left to each driver's own tests.

use std::sync::Arc;

use super::{ensure, Check, CheckResult};
use crate::{
    content::{Store, Writer, WriterOptions},
    snapshot::Labels,
    ErrorKind, PluginError, Result,
};

/// Every check, by name.
pub const CHECKS: &[Check<dyn Store>] = &[
    ("writer basics", writer_basics),
    ("an empty blob commits", an_empty_blob_commits),
    ("large writes commit", large_writes_commit),
    ("resume after interruption", resume_after_interruption),
    ("close keeps the ingest", close_keeps_the_ingest),
    ("truncate starts over", truncate_starts_over),
    (
        "a reported digest follows the data",
        a_reported_digest_follows_the_data,
    ),
    (
        "writes at a wrong offset are refused",
        writes_at_a_wrong_offset_are_refused,
    ),
    ("commit of existing content", commit_of_existing_content),
    (
        "digest mismatch keeps the ingest",
        digest_mismatch_keeps_the_ingest,
    ),
    (
        "size mismatch keeps the ingest",
        size_mismatch_keeps_the_ingest,
    ),
    (
        "open-time expectations are checked",
        open_time_expectations_are_checked,
    ),
    ("labels", labels_are_kept_and_updated),
    ("status listing", status_listing),
    ("abort removes the ingest", abort_removes_the_ingest),
    ("locked ref is unavailable", locked_ref_is_unavailable),
    ("reader at offsets", reader_at_offsets),
    ("delete removes the blob", delete_removes_the_blob),
    (
        "malformed digests are invalid",
        malformed_digests_are_invalid,
    ),
];

/// Runs every check, each on a fresh store from `make`; panics listing the failures.
pub fn run_all(make: &mut dyn FnMut() -> Arc<dyn Store>) {
    super::run("content store", CHECKS, make);
}

/// Runs every check through the built library at `library`, loaded and initialised the way the
/// daemon does (one fresh root per check): the proof that the driver works across the ABI.
pub fn run_all_loaded(library: &std::path::Path) {
    let roots = super::Roots::new();
    let mut init = super::init_loaded(library, &roots);
    run_all(&mut || match init() {
        crate::Driver::Content(driver) => driver,
        other => panic!(
            "{} provides {other:?}, not a content store",
            library.display()
        ),
    });
}

const HELLO: &[u8] = b"hello world";
const HELLO_DIGEST: &str =
    "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
const ABC_DIGEST: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const ABD_DIGEST: &str = "sha256:a52d159f262b2c6ddb724a61840befc36eb30c88877a4030b65cbe86298449c9";
const GOOD_DIGEST: &str = "sha256:770e607624d689265ca6c44884d0807d9b054d23c473c106c72be9de08b7376c";
const EMPTY_DIGEST: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Of `pattern(3000)`.
const PATTERN_3000_DIGEST: &str =
    "sha256:fb5a5e7439fbb98b3dc324a722e08e9e89c21f0fd07307980e831cf7f97cc82b";
/// Of `pattern(3 MiB + 5)`.
const PATTERN_3M_DIGEST: &str =
    "sha256:ec2623f73dcc1952ac286d1a0e4b72f10904022864fa6db9558717a7e5a94ec4";
const PATTERN_3M_LEN: usize = 3 * 1024 * 1024 + 5;

/// Bytes that differ from position to position, so misplaced reads show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

use rcontainerd_pkg::labels::from_pairs as labels;

fn step<T>(what: &str, result: Result<T>) -> std::result::Result<T, String> {
    result.map_err(|err| format!("{what}: {err} ({:?})", err.kind))
}

fn expect_kind<T>(
    what: &str,
    result: Result<T>,
    kind: ErrorKind,
) -> std::result::Result<PluginError, String> {
    match result {
        Ok(_) => Err(format!("{what}: succeeded, expected {kind}")),
        Err(err) if err.kind != kind => Err(format!(
            "{what}: got {} ({}), expected {kind}",
            err.kind, err.message
        )),
        Err(err) => Ok(err),
    }
}

fn open(s: &dyn Store, reference: &str) -> std::result::Result<Box<dyn Writer>, String> {
    step(
        &format!("open writer {reference}"),
        s.writer(WriterOptions {
            reference: reference.to_owned(),
            ..WriterOptions::default()
        }),
    )
}

/// Writes `data` through `w` from its current offset, in chunks of `chunk` bytes.
fn write_all(w: &mut dyn Writer, data: &[u8], chunk: usize) -> CheckResult {
    let mut offset = step("status", w.status())?.offset as u64;
    for part in data.chunks(chunk.max(1)) {
        let n = step(&format!("write @{offset}"), w.write(offset, part))?;
        ensure!(
            n == part.len(),
            "write @{offset} took {n} of {} bytes",
            part.len()
        );
        offset += n as u64;
    }
    Ok(())
}

/// Commits `data` under `reference` with its expected size and digest.
fn commit_blob(
    s: &dyn Store,
    reference: &str,
    data: &[u8],
    digest: &str,
    l: Labels,
) -> CheckResult {
    let mut w = open(s, reference)?;
    write_all(w.as_mut(), data, 4096)?;
    step(
        &format!("commit {reference}"),
        w.commit(data.len() as i64, digest, l),
    )
}

fn read_all(s: &dyn Store, digest: &str) -> std::result::Result<Vec<u8>, String> {
    let r = step(&format!("reader {digest}"), s.reader(digest))?;
    let size = step("reader size", r.size())? as usize;
    let mut out = vec![0u8; size];
    let mut done = 0;
    while done < size {
        let n = step(
            &format!("read @{done}"),
            r.read_at(done as u64, &mut out[done..]),
        )?;
        ensure!(
            n > 0,
            "read @{done} returned 0 before the end ({size} bytes)"
        );
        done += n;
    }
    Ok(out)
}

fn ingest_gone(s: &dyn Store, reference: &str) -> CheckResult {
    expect_kind(
        &format!("status of {reference}"),
        s.status(reference),
        ErrorKind::NotFound,
    )?;
    let listed = step("list statuses", s.list_statuses())?;
    ensure!(
        listed.iter().all(|st| st.reference != reference),
        "{reference} is still listed among the ingests"
    );
    Ok(())
}

pub fn writer_basics(s: &dyn Store) -> CheckResult {
    // Refs are opaque: the host passes `<namespace>/<counter>/<ref>`.
    let reference = "default/1/basics";
    let mut w = open(s, reference)?;
    let st = step("status of a new writer", w.status())?;
    ensure!(
        st.reference == reference,
        "status names ref {:?}",
        st.reference
    );
    ensure!(st.offset == 0, "a new ingest is at offset {}", st.offset);
    ensure!(st.started_at > 0, "started_at is not set");
    step("write @0", w.write(0, &HELLO[..6]))?;
    step("write @6", w.write(6, &HELLO[6..]))?;
    let st = step("status after writes", w.status())?;
    ensure!(st.offset == 11, "offset after 11 bytes is {}", st.offset);
    ensure!(
        st.updated_at >= st.started_at,
        "updated_at is before started_at"
    );
    step("commit", w.commit(11, HELLO_DIGEST, Labels::new()))?;
    drop(w);

    let info = step("info", s.info(HELLO_DIGEST))?;
    ensure!(info.digest == HELLO_DIGEST, "info digest {}", info.digest);
    ensure!(info.size == 11, "info size {}", info.size);
    ensure!(info.created > 0, "info created is not set");
    ensure!(
        read_all(s, HELLO_DIGEST)? == HELLO,
        "blob content differs from what was written"
    );
    let list = step("list", s.list())?;
    ensure!(
        list.iter().any(|i| i.digest == HELLO_DIGEST),
        "list does not show the committed blob"
    );
    ingest_gone(s, reference)
}

pub fn an_empty_blob_commits(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "empty")?;
    step("commit", w.commit(0, EMPTY_DIGEST, Labels::new()))?;
    let info = step("info", s.info(EMPTY_DIGEST))?;
    ensure!(info.size == 0, "empty blob has size {}", info.size);
    Ok(())
}

pub fn large_writes_commit(s: &dyn Store) -> CheckResult {
    let data = pattern(PATTERN_3M_LEN);
    let mut w = open(s, "large")?;
    // Mixed sizes: small writes, then 1 MiB ones (what pulling clients send).
    write_all(w.as_mut(), &data[..1000], 100)?;
    write_all(w.as_mut(), &data[1000..], 1 << 20)?;
    step(
        "commit",
        w.commit(data.len() as i64, PATTERN_3M_DIGEST, Labels::new()),
    )?;
    ensure!(
        read_all(s, PATTERN_3M_DIGEST)? == data,
        "large blob content differs"
    );
    Ok(())
}

pub fn resume_after_interruption(s: &dyn Store) -> CheckResult {
    let data = pattern(3000);
    let mut w = open(s, "resume")?;
    write_all(w.as_mut(), &data[..1200], 500)?;
    // Dropped without commit or close, as when a client's stream breaks.
    drop(w);
    let st = step("status after interruption", s.status("resume"))?;
    ensure!(
        st.offset == 1200,
        "interrupted ingest shows offset {}",
        st.offset
    );

    let mut w = open(s, "resume")?;
    let st = step("status of the resumed writer", w.status())?;
    ensure!(
        st.offset == 1200,
        "resumed writer is at offset {}",
        st.offset
    );
    write_all(w.as_mut(), &data[1200..], 700)?;
    step("commit", w.commit(3000, PATTERN_3000_DIGEST, Labels::new()))?;
    ensure!(
        read_all(s, PATTERN_3000_DIGEST)? == data,
        "resumed blob differs"
    );
    ingest_gone(s, "resume")
}

pub fn close_keeps_the_ingest(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "close")?;
    step("write", w.write(0, b"ab"))?;
    step("close", w.close())?;
    drop(w);
    let st = step("status after close", s.status("close"))?;
    ensure!(st.offset == 2, "closed ingest shows offset {}", st.offset);
    let mut w = open(s, "close")?;
    step("write @2", w.write(2, b"c"))?;
    step("commit", w.commit(3, ABC_DIGEST, Labels::new()))
}

pub fn truncate_starts_over(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "truncate")?;
    write_all(w.as_mut(), b"garbage", 3)?;
    step("truncate", w.truncate(0))?;
    let st = step("status after truncate", w.status())?;
    ensure!(
        st.offset == 0,
        "truncated ingest is at offset {}",
        st.offset
    );
    step("write @0", w.write(0, b"good"))?;
    step("commit", w.commit(4, GOOD_DIGEST, Labels::new()))?;
    ensure!(
        read_all(s, GOOD_DIGEST)? == b"good",
        "truncated blob differs"
    );
    Ok(())
}

/// `Writer::digest` is optional; a driver that reports one must report the digest of exactly
/// the data written so far, through writes, truncation, large writes and a resume.
pub fn a_reported_digest_follows_the_data(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "digest")?;
    let Some(empty) = step("digest of a new ingest", w.digest())? else {
        step("write", w.write(0, b"abc"))?;
        ensure!(
            step("digest after a write", w.digest())?.is_none(),
            "a writer without a running digest started reporting one"
        );
        return Ok(());
    };
    ensure!(empty == EMPTY_DIGEST, "new ingest reports digest {empty}");
    let digest_is = |w: &mut dyn Writer, when: &str, want: &str| -> CheckResult {
        let got = step(&format!("digest {when}"), w.digest())?;
        ensure!(
            got.as_deref() == Some(want),
            "digest {when} is {got:?}, want {want}"
        );
        Ok(())
    };
    step("write", w.write(0, b"abc"))?;
    digest_is(w.as_mut(), "after writing abc", ABC_DIGEST)?;
    step("truncate", w.truncate(0))?;
    digest_is(w.as_mut(), "after truncate", EMPTY_DIGEST)?;
    step("write @0", w.write(0, b"good"))?;
    digest_is(w.as_mut(), "after writing good", GOOD_DIGEST)?;
    step("truncate", w.truncate(0))?;
    let data = pattern(PATTERN_3M_LEN);
    write_all(w.as_mut(), &data[..2 << 20], 1 << 20)?;
    drop(w);
    let mut w = open(s, "digest")?;
    write_all(w.as_mut(), &data[2 << 20..], 1 << 20)?;
    digest_is(w.as_mut(), "after a resumed large write", PATTERN_3M_DIGEST)?;
    step(
        "commit",
        w.commit(data.len() as i64, PATTERN_3M_DIGEST, Labels::new()),
    )
}

pub fn writes_at_a_wrong_offset_are_refused(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "offset")?;
    step("write @0", w.write(0, b"ab"))?;
    ensure!(w.write(7, b"x").is_err(), "write @7 at offset 2 succeeded");
    ensure!(w.write(0, b"x").is_err(), "write @0 at offset 2 succeeded");
    let st = step("status", w.status())?;
    ensure!(
        st.offset == 2,
        "refused writes moved the offset to {}",
        st.offset
    );
    step("write @2", w.write(2, b"c"))?;
    step("commit", w.commit(3, ABC_DIGEST, Labels::new()))
}

pub fn commit_of_existing_content(s: &dyn Store) -> CheckResult {
    commit_blob(s, "first", b"abc", ABC_DIGEST, Labels::new())?;

    let mut w = open(s, "second")?;
    step("write", w.write(0, b"abc"))?;
    let err = expect_kind(
        "commit of existing content",
        w.commit(3, ABC_DIGEST, Labels::new()),
        ErrorKind::AlreadyExists,
    )?;
    ensure!(
        err.message.contains(ABC_DIGEST),
        "already-exists message {:?} does not name the digest",
        err.message
    );
    drop(w);
    // containerd aborts the ingest; the ref is free again.
    ingest_gone(s, "second")?;

    // Naming the digest up front may fail at open or at commit, always as AlreadyExists.
    let opened = s.writer(WriterOptions {
        reference: "third".into(),
        expected_size: Some(3),
        expected_digest: Some(ABC_DIGEST.into()),
    });
    match opened {
        Err(err) if err.kind == ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(format!(
                "open with an existing digest: {err} ({:?})",
                err.kind
            ))
        }
        Ok(mut w) => {
            step("write", w.write(0, b"abc"))?;
            expect_kind(
                "commit of an existing expected digest",
                w.commit(3, ABC_DIGEST, Labels::new()),
                ErrorKind::AlreadyExists,
            )?;
        }
    }
    ingest_gone(s, "third")?;
    ensure!(read_all(s, ABC_DIGEST)? == b"abc", "existing blob changed");
    drop(open(s, "second")?);
    Ok(())
}

pub fn digest_mismatch_keeps_the_ingest(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "digest")?;
    step("write", w.write(0, b"abc"))?;
    let err = expect_kind(
        "commit with a wrong digest",
        w.commit(3, ABD_DIGEST, Labels::new()),
        ErrorKind::FailedPrecondition,
    )?;
    ensure!(
        err.message.contains(ABC_DIGEST) && err.message.contains(ABD_DIGEST),
        "digest mismatch message {:?} does not name both digests",
        err.message
    );
    drop(w);
    let st = step("status after a failed commit", s.status("digest"))?;
    ensure!(st.offset == 3, "failed commit left offset {}", st.offset);
    expect_kind(
        "info of the unexpected digest",
        s.info(ABC_DIGEST),
        ErrorKind::NotFound,
    )?;
    let mut w = open(s, "digest")?;
    step("retried commit", w.commit(3, ABC_DIGEST, Labels::new()))?;
    ingest_gone(s, "digest")
}

pub fn size_mismatch_keeps_the_ingest(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "size")?;
    step("write", w.write(0, b"abc"))?;
    let err = expect_kind(
        "commit with a wrong size",
        w.commit(5, "", Labels::new()),
        ErrorKind::FailedPrecondition,
    )?;
    ensure!(
        err.message.contains("3 != 5"),
        "size mismatch message {:?} does not say 3 != 5",
        err.message
    );
    drop(w);
    let st = step("status after a failed commit", s.status("size"))?;
    ensure!(st.offset == 3, "failed commit left offset {}", st.offset);
    let mut w = open(s, "size")?;
    // Size 0 and no digest: anything goes.
    step(
        "commit without expectations",
        w.commit(0, "", Labels::new()),
    )?;
    step("info", s.info(ABC_DIGEST)).map(drop)
}

pub fn open_time_expectations_are_checked(s: &dyn Store) -> CheckResult {
    let mut w = step(
        "open with expectations",
        s.writer(WriterOptions {
            reference: "expect".into(),
            expected_size: Some(3),
            expected_digest: Some(ABD_DIGEST.into()),
        }),
    )?;
    let st = step("status", w.status())?;
    ensure!(st.total == 3, "status total {} (expected size 3)", st.total);
    ensure!(
        st.expected == ABD_DIGEST,
        "status expected {:?}",
        st.expected
    );
    step("write", w.write(0, b"abc"))?;
    expect_kind(
        "commit against the open-time digest",
        w.commit(0, "", Labels::new()),
        ErrorKind::FailedPrecondition,
    )?;
    // A digest given at commit replaces the one given at open.
    step(
        "commit with the right digest",
        w.commit(0, ABC_DIGEST, Labels::new()),
    )
}

pub fn labels_are_kept_and_updated(s: &dyn Store) -> CheckResult {
    let l = labels(&[("a", "1"), ("b", "2")]);
    commit_blob(s, "labels", b"abc", ABC_DIGEST, l.clone())?;
    let info = step("info", s.info(ABC_DIGEST))?;
    ensure!(
        info.labels == l,
        "committed labels {:?}, expected {l:?}",
        info.labels
    );

    let mut change = info.clone();
    change.labels = labels(&[("a", "x"), ("c", "3")]);
    let updated = step(
        "update labels.a",
        s.update(change.clone(), &["labels.a".to_string()]),
    )?;
    let want = labels(&[("a", "x"), ("b", "2")]);
    ensure!(
        updated.labels == want,
        "update of labels.a gave {:?}, expected {want:?}",
        updated.labels
    );
    step(
        "update labels.b",
        s.update(change.clone(), &["labels.b".to_string()]),
    )?;
    let info = step("info after updates", s.info(ABC_DIGEST))?;
    let want = labels(&[("a", "x")]);
    ensure!(
        info.labels == want,
        "labels.b not in the update should be removed: {:?}",
        info.labels
    );
    ensure!(info.updated >= info.created, "updated is before created");

    let all = step(
        "update labels",
        s.update(change.clone(), &["labels".to_string()]),
    )?;
    ensure!(
        all.labels == change.labels,
        "update of labels gave {:?}",
        all.labels
    );
    expect_kind(
        "update of another field",
        s.update(change.clone(), &["size".to_string()]),
        ErrorKind::InvalidArgument,
    )?;
    let mut missing = change;
    missing.digest = HELLO_DIGEST.into();
    expect_kind(
        "update of missing content",
        s.update(missing, &["labels".to_string()]),
        ErrorKind::NotFound,
    )
    .map(drop)
}

pub fn status_listing(s: &dyn Store) -> CheckResult {
    let mut a = open(s, "ns/1/a")?;
    step("write a", a.write(0, b"abc"))?;
    let mut b = step(
        "open b",
        s.writer(WriterOptions {
            reference: "ns/2/b".into(),
            expected_size: Some(11),
            expected_digest: Some(HELLO_DIGEST.into()),
        }),
    )?;
    step("write b", b.write(0, b"hello"))?;
    drop(b);
    let listed = step("list statuses", s.list_statuses())?;
    let find = |r: &str| listed.iter().find(|st| st.reference == r);
    let (Some(sa), Some(sb)) = (find("ns/1/a"), find("ns/2/b")) else {
        return Err(format!(
            "list statuses shows {listed:?}, expected ns/1/a and ns/2/b"
        ));
    };
    ensure!(
        sa.offset == 3 && sb.offset == 5,
        "offsets {} and {}",
        sa.offset,
        sb.offset
    );
    ensure!(
        sb.total == 11 && sb.expected == HELLO_DIGEST,
        "status of b lost its expectations: {sb:?}"
    );
    ensure!(
        sb.started_at > 0 && sb.updated_at >= sb.started_at,
        "status of b times: {sb:?}"
    );
    let st = step("status a", s.status("ns/1/a"))?;
    ensure!(st.offset == 3, "status a offset {}", st.offset);
    expect_kind(
        "status of an unknown ref",
        s.status("ns/1/zz"),
        ErrorKind::NotFound,
    )?;
    step("commit a", a.commit(3, ABC_DIGEST, Labels::new()))?;
    ingest_gone(s, "ns/1/a")
}

pub fn abort_removes_the_ingest(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "abort")?;
    step("write", w.write(0, b"abc"))?;
    step("close", w.close())?;
    drop(w);
    step("abort", s.abort("abort"))?;
    ingest_gone(s, "abort")?;
    expect_kind("abort again", s.abort("abort"), ErrorKind::NotFound)?;
    let w = open(s, "abort")?;
    let st = step("status of a new writer", w.status())?;
    ensure!(
        st.offset == 0,
        "writer after abort starts at offset {}",
        st.offset
    );
    Ok(())
}

pub fn locked_ref_is_unavailable(s: &dyn Store) -> CheckResult {
    let mut w = open(s, "default/3/locked")?;
    let err = expect_kind(
        "second writer",
        s.writer(WriterOptions {
            reference: "default/3/locked".into(),
            ..WriterOptions::default()
        }),
        ErrorKind::Unavailable,
    )?;
    ensure!(
        err.message.contains("default/3/locked") && err.message.contains("locked"),
        "locked message {:?} does not name the ref",
        err.message
    );
    // Other refs are not affected.
    drop(open(s, "default/3/other")?);
    step("close", w.close())?;
    drop(w);
    drop(open(s, "default/3/locked")?); // released by close, then by drop
    let mut w = open(s, "default/3/locked")?;
    step("write", w.write(0, b"abc"))?;
    step("commit", w.commit(3, ABC_DIGEST, Labels::new()))?;
    drop(open(s, "default/3/locked")?); // released by commit
    Ok(())
}

pub fn reader_at_offsets(s: &dyn Store) -> CheckResult {
    let data = pattern(3000);
    commit_blob(s, "reader", &data, PATTERN_3000_DIGEST, Labels::new())?;
    let r = step("reader", s.reader(PATTERN_3000_DIGEST))?;
    ensure!(step("size", r.size())? == 3000, "reader size is not 3000");
    let mut buf = vec![0u8; 500];
    let n = step("read @1000", r.read_at(1000, &mut buf))?;
    ensure!(
        n == 500 && buf == data[1000..1500],
        "read @1000 returned {n} bytes or wrong ones"
    );
    let n = step("read @2900", r.read_at(2900, &mut buf))?;
    ensure!(
        n == 100 && buf[..100] == data[2900..],
        "read @2900 returned {n} bytes or wrong ones"
    );
    ensure!(
        step("read @3000", r.read_at(3000, &mut buf))? == 0,
        "read at the end returned data"
    );
    ensure!(
        step("read @9000", r.read_at(9000, &mut buf))? == 0,
        "read past the end returned data"
    );
    Ok(())
}

pub fn delete_removes_the_blob(s: &dyn Store) -> CheckResult {
    commit_blob(s, "delete", b"abc", ABC_DIGEST, labels(&[("a", "1")]))?;
    step("delete", s.delete(ABC_DIGEST))?;
    expect_kind("info after delete", s.info(ABC_DIGEST), ErrorKind::NotFound)?;
    expect_kind(
        "reader after delete",
        s.reader(ABC_DIGEST),
        ErrorKind::NotFound,
    )?;
    expect_kind("delete again", s.delete(ABC_DIGEST), ErrorKind::NotFound)?;
    let list = step("list", s.list())?;
    ensure!(
        list.iter().all(|i| i.digest != ABC_DIGEST),
        "deleted blob is listed"
    );
    // The same content can be written again, without the old labels.
    commit_blob(s, "delete", b"abc", ABC_DIGEST, Labels::new())?;
    let info = step("info", s.info(ABC_DIGEST))?;
    ensure!(
        info.labels.is_empty(),
        "labels survived delete: {:?}",
        info.labels
    );
    Ok(())
}

pub fn malformed_digests_are_invalid(s: &dyn Store) -> CheckResult {
    for bad in [
        "",
        "nope",
        "sha256:",
        "sha256:zz",
        "sha256:../../etc/passwd",
        &HELLO_DIGEST[..20],
    ] {
        expect_kind(
            &format!("info {bad:?}"),
            s.info(bad),
            ErrorKind::InvalidArgument,
        )?;
        expect_kind(
            &format!("reader {bad:?}"),
            s.reader(bad),
            ErrorKind::InvalidArgument,
        )?;
        expect_kind(
            &format!("delete {bad:?}"),
            s.delete(bad),
            ErrorKind::InvalidArgument,
        )?;
    }
    expect_kind(
        "info of missing content",
        s.info(HELLO_DIGEST),
        ErrorKind::NotFound,
    )?;
    let mut w = open(s, "malformed")?;
    step("write", w.write(0, b"abc"))?;
    expect_kind(
        "commit with a malformed digest",
        w.commit(3, "sha256:abc", Labels::new()),
        ErrorKind::InvalidArgument,
    )?;
    expect_kind(
        "open with a malformed digest",
        s.writer(WriterOptions {
            reference: "malformed-2".into(),
            expected_digest: Some("nope".into()),
            ..WriterOptions::default()
        }),
        ErrorKind::InvalidArgument,
    )
    .map(drop)
}
