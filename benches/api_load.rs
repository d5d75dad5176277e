//! Open-loop HTTP load on a running vireid API (issue 18, item 6), driven by
//! `bench/api_load.sh`, which starts `vireid run` with two cameras first.
//!
//!   cargo bench --bench api_load -- URL TOKEN RATE SECONDS IMAGE [OUT.json]
//!
//! RATE requests/s in all, spread over keep-alive connections, each request
//! sent at its scheduled time whether or not the previous one has answered
//! (latency is measured from that time, so a stall shows in p99 instead of
//! silently lowering the rate). The mix: identity and sighting lists, one
//! identity (an id the list returned), /metrics, the cameras, and
//! `POST /api/v1/query` with IMAGE
//! (5 %: each embeds the image). Prints and writes per-route p50/p99/max,
//! counts of non-2xx answers and transport errors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 32;

struct Route {
    name: &'static str,
    /// Share of the requests, in percent.
    percent: u32,
}

const MIX: [Route; 6] = [
    Route { name: "GET /api/v1/identities", percent: 35 },
    Route { name: "GET /api/v1/sightings", percent: 30 },
    Route { name: "GET /api/v1/identities/{id}", percent: 15 },
    Route { name: "GET /metrics", percent: 10 },
    Route { name: "GET /api/v1/cameras", percent: 5 },
    Route { name: "POST /api/v1/query", percent: 5 },
];

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    non_2xx: BTreeMap<u16, u64>,
    errors: u64,
}

fn request(route: usize, seq: u64, host: &str, token: &str, image: &[u8], known: &Mutex<Vec<u64>>) -> Vec<u8> {
    let head = |method: &str, path: String, extra: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
    };
    match route {
        0 => head("GET", "/api/v1/identities?limit=50".into(), "").into_bytes(),
        1 => head("GET", "/api/v1/sightings?limit=50".into(), "").into_bytes(),
        // An id the identity list has returned (1 before it has any).
        2 => {
            let ids = known.lock().unwrap();
            let id = if ids.is_empty() { 1 } else { ids[seq as usize % ids.len()] };
            head("GET", format!("/api/v1/identities/{id}"), "").into_bytes()
        }
        3 => head("GET", "/metrics".into(), "").into_bytes(),
        4 => head("GET", "/api/v1/cameras".into(), "").into_bytes(),
        _ => {
            let boundary = "vireid-load-boundary";
            let mut body = Vec::new();
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"modality\"\r\n\r\nthermal\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"q.jpg\"\r\n\
                     Content-Type: image/jpeg\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(image);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let extra =
                format!("Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n", body.len());
            let mut out = head("POST", "/api/v1/query".into(), &extra).into_bytes();
            out.extend_from_slice(&body);
            out
        }
    }
}

/// Reads one HTTP/1.1 response (headers + Content-Length body); returns the status and the body.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let status: u16 =
                head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status"))?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| bad("no content-length"))?;
            let total = end + 4 + length;
            while buf.len() < total {
                read_more(stream, buf).await?;
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Ok((status, body));
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16384];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// The ids in an identity list (`[{"id": …}, …]` or `{"identities": [...]}`).
fn remember_ids(body: &[u8], known: &Mutex<Vec<u64>>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let list = v.as_array().or_else(|| v.get("identities").and_then(|l| l.as_array()));
    let ids: Vec<u64> = list.into_iter().flatten().filter_map(|i| i.get("id").and_then(|id| id.as_u64())).collect();
    if !ids.is_empty() {
        *known.lock().unwrap() = ids;
    }
}

fn pick(seq: u64) -> usize {
    // A fixed interleaving that meets MIX's percentages over every 100 requests.
    let slot = (seq.wrapping_mul(37) % 100) as u32;
    let mut acc = 0;
    for (i, r) in MIX.iter().enumerate() {
        acc += r.percent;
        if slot < acc {
            return i;
        }
    }
    MIX.len() - 1
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.len() < 5 {
        eprintln!("usage: cargo bench --bench api_load -- URL TOKEN RATE SECONDS IMAGE [OUT.json]");
        std::process::exit(2);
    }
    let addr = args[0].trim_start_matches("http://").trim_end_matches('/').to_string();
    let token = args[1].clone();
    let rate: f64 = args[2].parse().expect("RATE: requests per second");
    let seconds: f64 = args[3].parse().expect("SECONDS");
    let image = std::fs::read(&args[4]).unwrap_or_else(|e| panic!("IMAGE {}: {e}", args[4]));
    let out = args.get(5).cloned();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let tallies: Arc<Mutex<Vec<Tally>>> = Arc::new(Mutex::new((0..MIX.len()).map(|_| Tally::default()).collect()));
    let known: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![]));
    let started = Instant::now();
    runtime.block_on(async {
        let interval = Duration::from_secs_f64(CONNECTIONS as f64 / rate);
        let per_connection = (rate * seconds / CONNECTIONS as f64).round() as u64;
        let mut tasks = vec![];
        for c in 0..CONNECTIONS {
            let (addr, token, image, tallies) = (addr.clone(), token.clone(), image.clone(), tallies.clone());
            let known = known.clone();
            tasks.push(tokio::spawn(async move {
                // Connections start spread over one interval.
                let t0 = Instant::now() + interval.mul_f64(c as f64 / CONNECTIONS as f64);
                let mut stream: Option<TcpStream> = None;
                let mut buf = Vec::new();
                for k in 0..per_connection {
                    let due = t0 + interval.mul_f64(k as f64);
                    tokio::time::sleep_until(due.into()).await;
                    let seq = k * CONNECTIONS as u64 + c as u64;
                    let route = pick(seq);
                    let result = async {
                        if stream.is_none() {
                            stream = Some(TcpStream::connect(&addr).await?);
                            buf.clear();
                        }
                        let s = stream.as_mut().unwrap();
                        s.write_all(&request(route, seq, &addr, &token, &image, &known)).await?;
                        let (status, body) = read_response(s, &mut buf).await?;
                        if route == 0 && status == 200 {
                            remember_ids(&body, &known);
                        }
                        Ok::<_, std::io::Error>(status)
                    }
                    .await;
                    let took = due.elapsed().as_micros() as u64;
                    let mut t = tallies.lock().unwrap();
                    let tally = &mut t[route];
                    match result {
                        Ok(status) => {
                            tally.latencies_us.push(took);
                            if !(200..300).contains(&status) {
                                *tally.non_2xx.entry(status).or_default() += 1;
                            }
                        }
                        Err(_) => {
                            tally.errors += 1;
                            stream = None;
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let tallies = Arc::try_unwrap(tallies).ok().unwrap().into_inner().unwrap();
    let mut report = serde_json::Map::new();
    let mut all = vec![];
    let (mut answered, mut errors, mut non_2xx) = (0u64, 0u64, 0u64);
    println!(
        "{:<30} {:>7} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "route", "answers", "p50 ms", "p99 ms", "max ms", "non-2xx", "errors"
    );
    for (route, mut t) in MIX.iter().zip(tallies) {
        t.latencies_us.sort_unstable();
        let n2 = t.non_2xx.values().sum::<u64>();
        println!(
            "{:<30} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>7}",
            route.name,
            t.latencies_us.len(),
            percentile(&t.latencies_us, 0.5),
            percentile(&t.latencies_us, 0.99),
            percentile(&t.latencies_us, 1.0),
            n2,
            t.errors
        );
        report.insert(
            route.name.to_string(),
            serde_json::json!({
                "answers": t.latencies_us.len(),
                "p50_ms": percentile(&t.latencies_us, 0.5),
                "p99_ms": percentile(&t.latencies_us, 0.99),
                "max_ms": percentile(&t.latencies_us, 1.0),
                "non_2xx": t.non_2xx.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
                "errors": t.errors,
            }),
        );
        answered += t.latencies_us.len() as u64;
        errors += t.errors;
        non_2xx += n2;
        all.extend(t.latencies_us);
    }
    all.sort_unstable();
    let summary = serde_json::json!({
        "target_rate": rate,
        "achieved_rate": answered as f64 / wall,
        "seconds": wall,
        "answers": answered,
        "p50_ms": percentile(&all, 0.5),
        "p99_ms": percentile(&all, 0.99),
        "non_2xx": non_2xx,
        "errors": errors,
        "routes": report,
    });
    println!(
        "all: {answered} answers in {wall:.1} s ({:.0}/s of {rate}/s), p50 {:.2} ms, p99 {:.2} ms, {non_2xx} non-2xx, {errors} errors",
        answered as f64 / wall,
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    }
}
