//! Writes every target's seed inputs ([`mesh_auth_fuzz::seeds`]) to
//! `DIR/<target>/seed-NNN`, replacing what was there.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz-seeds DIR");
        return ExitCode::from(64);
    };
    for (target, inputs) in mesh_auth_fuzz::seeds::all() {
        let out = dir.join(target);
        let written = std::fs::remove_dir_all(&out)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .and_then(|()| std::fs::create_dir_all(&out))
            .and_then(|()| {
                inputs.iter().enumerate().try_for_each(|(i, input)| {
                    std::fs::write(out.join(format!("seed-{i:03}")), input)
                })
            });
        if let Err(e) = written {
            eprintln!("fuzz-seeds: {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
        println!("{}: {} seeds", out.display(), inputs.len());
    }
    ExitCode::SUCCESS
}
