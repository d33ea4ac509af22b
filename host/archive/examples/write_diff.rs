//! `write_diff LOWER UPPER OUT [gzip]`: writes the layer from LOWER to UPPER to OUT and
//! prints its digests — to compare with containerd's `ctr snapshots diff` by hand.

use std::fs::File;
use std::path::Path;

use rcontainerd_archive::diff::{write_diff, DiffCompression};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, lower, upper, out, rest @ ..] = args.as_slice() else {
        return Err("usage: write_diff LOWER UPPER OUT [gzip]".into());
    };
    let compression = match rest {
        [] => DiffCompression::None,
        [gzip] if gzip == "gzip" => DiffCompression::Gzip,
        _ => return Err("the only compression is gzip".into()),
    };
    let written = write_diff(
        Path::new(lower),
        Path::new(upper),
        File::create(out)?,
        compression,
    )?;
    println!("{written:#?}");
    Ok(())
}
