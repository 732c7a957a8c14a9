//! `content put FILE|-` and `content get HASH` over HTTP.

use super::{out_json, out_line};
use crate::Global;
use crate::client::{Body, enc, server_error};
use anyhow::Context;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Content-addressed storage commands.
#[derive(clap::Subcommand)]
pub enum ContentCmd {
    /// Store a file (`-` for stdin); prints its hash.
    Put {
        /// File to store, or `-`.
        file: PathBuf,
    },
    /// Write content to stdout, verified against its hash by the server.
    Get {
        /// 40 (sha1) or 64 (sha256) hex digits.
        hash: String,
    },
}

/// Runs a content command.
pub fn run(g: &Global, c: ContentCmd) -> anyhow::Result<()> {
    match c {
        ContentCmd::Put { file } => {
            let data = if file.as_os_str() == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v).context("reading stdin")?;
                v
            } else {
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?
            };
            let (status, body) =
                g.client()?
                    .json("POST", "/v1/content", Body::Raw(&data, "application/octet-stream"))?;
            if status >= 400 {
                return Err(server_error(status, body.to_string().as_bytes()));
            }
            if g.json {
                out_json(&body)
            } else {
                out_line(body["hash"].as_str().unwrap_or_default().as_bytes())
            }
        }
        ContentCmd::Get { hash } => {
            let bytes = g.client()?.raw(
                "GET",
                &format!("/v1/content/{}", enc(&hash)),
                Body::None,
                &format!("content {hash} not found"),
            )?;
            let mut o = std::io::stdout().lock();
            o.write_all(&bytes)?;
            o.flush()?;
            Ok(())
        }
    }
}
