#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    classcast::cli::main(classcast::cli::Cli::parse())
}
