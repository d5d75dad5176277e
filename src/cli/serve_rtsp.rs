//! `vireid serve-rtsp`: stand-in cameras over RTSP ([`crate::ingest::rtsp_server`]).

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct ServeRtspArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub address: String,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 8554)]
    pub port: u16,
    /// A stream as NAME=SOURCE: SOURCE is an H.264 .mp4 file or `test:` (test
    /// pattern); served at rtsp://ADDRESS:PORT/NAME. Repeat for more streams.
    #[arg(long = "mount", required = true)]
    pub mounts: Vec<String>,
}

pub fn run(args: ServeRtspArgs) -> Result<()> {
    Ok(crate::ingest::rtsp_server::serve(&args.address, args.port, &args.mounts)?)
}
