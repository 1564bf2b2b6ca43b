//! `sql-time`: times one SQL statement on a SQLite database (read-only),
//! for trying query shapes without rebuilding the server.
//!
//! ```text
//! sql-time DB RUNS "SQL" [PARAM…]     (p50/p99 over RUNS, rows of the last run)
//! sql-time DB plan "SQL" [PARAM…]     (EXPLAIN QUERY PLAN)
//! ```
//! A parameter that parses as an integer is bound as one.

use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: sql-time DB RUNS|plan SQL [PARAM...]"
    );
    let conn = rusqlite::Connection::open_with_flags(
        &args[0],
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    if let Ok(p) = std::env::var("SQL_TIME_PRAGMAS") {
        conn.execute_batch(&p)?;
    }
    let params: Vec<rusqlite::types::Value> = args[3..]
        .iter()
        .map(|p| match p.parse::<i64>() {
            Ok(n) => rusqlite::types::Value::Integer(n),
            Err(_) => rusqlite::types::Value::Text(p.clone()),
        })
        .collect();
    if args[1] == "plan" {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", args[2]))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let parent: i64 = r.get(1)?;
            let detail: String = r.get(3)?;
            println!("{id:>4} {parent:>4} {detail}");
        }
        return Ok(());
    }
    let runs: usize = args[1].parse()?;
    let mut stmt = conn.prepare(&args[2])?;
    let mut times = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for _ in 0..runs {
        last.clear();
        let t = Instant::now();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(r) = rows.next()? {
            if last.len() < 5 {
                let v: rusqlite::types::Value = r.get(0)?;
                last.push(format!("{v:?}"));
            } else {
                last.push(String::new());
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "p50 {:8.2} ms  p99 {:8.2} ms  max {:8.2} ms  rows {}  first {:?}",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        last.len(),
        &last[..last.len().min(5)]
    );
    Ok(())
}
