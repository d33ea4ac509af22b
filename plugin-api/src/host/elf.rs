//! Structural validation of a library file before it is handed to the dynamic loader, which
//! crashes the process (SIGBUS) on a truncated file instead of returning an error.

use std::{fs, path::Path};

use object::{
    elf,
    read::elf::{FileHeader, ProgramHeader, SectionHeader},
    Endianness, ReadCache, ReadRef,
};

use super::LibraryErrorKind;

type Failure = (LibraryErrorKind, String);

/// The ELF machine of this build.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    elf::EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    elf::EM_AARCH64
} else if cfg!(target_arch = "riscv64") {
    elf::EM_RISCV
} else {
    elf::EM_NONE
};

fn invalid(reason: impl Into<String>) -> Failure {
    (LibraryErrorKind::InvalidFile, reason.into())
}

/// Checks that `path` is a regular file holding a complete 64-bit little-endian ELF shared
/// object for this machine: headers, every loadable segment and every section inside the file.
pub(crate) fn validate(path: &Path) -> Result<(), Failure> {
    // Checked before opening: opening a FIFO would block.
    let metadata = fs::metadata(path).map_err(|err| invalid(format!("cannot stat: {err}")))?;
    if !metadata.is_file() {
        return Err(invalid("not a regular file"));
    }
    // Only the headers are read (lazily, by range): libraries can be tens of megabytes and the
    // daemon validates every one at start-up.
    let file = fs::File::open(path).map_err(|err| invalid(format!("cannot open: {err}")))?;
    let size = file
        .metadata()
        .map_err(|err| invalid(format!("cannot stat: {err}")))?
        .len();
    let cache = ReadCache::new(file);
    let data = &cache;
    let ident = data
        .read_bytes_at(0, 16)
        .map_err(|()| invalid("not an ELF file"))?;
    if ident[..4] != elf::ELFMAG {
        return Err(invalid("not an ELF file"));
    }
    // e_ident[EI_CLASS] and e_ident[EI_DATA].
    if ident[4] != elf::ELFCLASS64 || ident[5] != elf::ELFDATA2LSB {
        return Err(invalid("not a 64-bit little-endian ELF file"));
    }
    let header = elf::FileHeader64::<Endianness>::parse(data)
        .map_err(|err| invalid(format!("bad ELF header: {err}")))?;
    let endian = header
        .endian()
        .map_err(|err| invalid(format!("bad ELF header: {err}")))?;
    let machine = header.e_machine(endian);
    if machine != HOST_MACHINE {
        return Err(invalid(format!(
            "built for ELF machine {machine}, this host is {HOST_MACHINE}"
        )));
    }
    if header.e_type(endian) != elf::ET_DYN {
        return Err(invalid("not a shared object (ELF type is not ET_DYN)"));
    }
    let segments = header.program_headers(endian, data).map_err(|err| {
        invalid(format!(
            "program headers outside the file (truncated?): {err}"
        ))
    })?;
    for (number, segment) in segments.iter().enumerate() {
        if segment.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let start = segment.p_offset(endian);
        let end = start.checked_add(segment.p_filesz(endian));
        if end.is_none_or(|end| end > size) {
            return Err(invalid(format!(
                "loadable segment {number} extends past the end of the {size}-byte file \
                 (truncated or corrupt)"
            )));
        }
    }
    let sections = header.section_headers(endian, data).map_err(|err| {
        invalid(format!(
            "section headers outside the file (truncated?): {err}"
        ))
    })?;
    for (number, section) in sections.iter().enumerate() {
        if section.sh_type(endian) == elf::SHT_NOBITS {
            continue;
        }
        let end = section
            .sh_offset(endian)
            .checked_add(section.sh_size(endian));
        if end.is_none_or(|end| end > size) {
            return Err(invalid(format!(
                "section {number} extends past the end of the {size}-byte file \
                 (truncated or corrupt)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library_of_this_system() -> Option<std::path::PathBuf> {
        [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
    }

    #[test]
    fn accepts_a_system_library_and_rejects_its_truncations() {
        let Some(libc) = library_of_this_system() else {
            rcontainerd_pkg::prereq::missing("libc.so.6 at a known path");
            return;
        };
        validate(&libc).unwrap();
        let data = fs::read(&libc).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for keep in [10, 64, 1000, data.len() / 2, data.len() - 1] {
            let cut = dir.path().join(format!("cut-{keep}.so"));
            fs::write(&cut, &data[..keep]).unwrap();
            let (kind, reason) = validate(&cut).unwrap_err();
            assert_eq!(kind, LibraryErrorKind::InvalidFile, "{keep}: {reason}");
        }
    }

    #[test]
    fn rejects_non_files_and_non_elf() {
        let dir = tempfile::tempdir().unwrap();
        assert!(validate(dir.path())
            .unwrap_err()
            .1
            .contains("not a regular file"));
        let text = dir.path().join("plugin.so");
        fs::write(&text, b"#!/bin/sh\necho not a library\n").unwrap();
        assert_eq!(validate(&text).unwrap_err().1, "not an ELF file");
    }
}
