//! The benchmark's customers file: deterministic for a seed, with 0.1%
//! invalid rows, 0.1% repeated ids and quoted fields holding commas and
//! quotes. Alongside it, the clean variant the `COPY` baselines load (the
//! same rows minus the invalid ones and the later occurrences of an id) and
//! the upsert prefill (half of the clean ids, with a sentinel score).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::infra::Res;

/// The header line of every file.
pub const HEADER: &str = "id,email,name,age,signup_date,score\n";

/// The score every prefilled row carries, so a check after the upsert can
/// prove that each prefilled id was updated.
pub const PREFILL_SCORE: &str = "-1";

/// Invalid rows and repeated ids, each in parts per million of the rows.
const INVALID_PPM: u64 = 1_000;
const DUPLICATE_PPM: u64 = 1_000;

/// SplitMix64: tiny, fast, and the same sequence on every platform, which is
/// all a data generator needs (no cryptographic or statistical subtlety).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(i).copied().unwrap_or("")
    }
}

/// One bit per id: which ids a file already holds.
struct IdSet(Vec<u64>);

impl IdSet {
    fn new(max_id: u64) -> Self {
        Self(vec![0; usize::try_from(max_id / 64 + 1).unwrap_or(0)])
    }

    fn slot(id: u64) -> (usize, u64) {
        (
            usize::try_from(id / 64).unwrap_or(usize::MAX),
            1 << (id % 64),
        )
    }

    fn contains(&self, id: u64) -> bool {
        let (i, bit) = Self::slot(id);
        self.0.get(i).is_some_and(|w| w & bit != 0)
    }

    fn insert(&mut self, id: u64) {
        let (i, bit) = Self::slot(id);
        if let Some(w) = self.0.get_mut(i) {
            *w |= bit;
        }
    }
}

const FIRST: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Donald",
    "Hedy",
    "John",
    "Sophie",
    "Niklaus",
    "Katherine",
    "Tim",
    "Anita",
    "Bjarne",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Knuth",
    "Lamarr",
    "McCarthy",
    "Wilson",
    "Wirth",
    "Johnson",
    "Berners-Lee",
    "Borg",
    "Stroustrup",
];
const NICK: &[&str] = &["The Great", "Doc", "Ace", "Bits", "Kernel", "Null"];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "corp.example.net",
    "example.io",
];
/// The invalid e-mail addresses the generator writes (a peer that does not
/// validate e-mail loads them; the benchmark counts them in its table).
pub const BAD_EMAILS: &[&str] = &[
    "not-an-email",
    "jane.doe.example.com",
    "bob@",
    "@example.com",
    "a..b@example.com",
];
const BAD_AGES: &[&str] = &["abc", "4O", "12.5", "thirty"];

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// The file Sluice loads (header + `rows` rows).
    pub full: PathBuf,
    /// Its size in bytes.
    pub full_bytes: u64,
    /// The clean variant for the `COPY` baselines, when asked for.
    pub clean: Option<PathBuf>,
    /// Half of the clean ids (odd ones) with score [`PREFILL_SCORE`], when asked for.
    pub prefill: Option<PathBuf>,
    /// Rows of the full file.
    pub rows: u64,
    /// Rows failing validation (bad e-mail or non-integer age).
    pub invalid: u64,
    /// Rows repeating an id that an earlier row has.
    pub duplicates: u64,
    /// Rows of the clean file (= distinct ids among valid rows).
    pub clean_rows: u64,
    /// Rows of the prefill file.
    pub prefill_rows: u64,
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One generated row, before it is written.
struct Row {
    id: u64,
    email: String,
    name: String,
    age: String,
    date: String,
    score: String,
}

impl Row {
    fn write(&self, out: &mut impl Write, score: &str) -> std::io::Result<()> {
        // The name always holds a comma, so it is always quoted; quotes inside
        // it are doubled as RFC 4180 says.
        writeln!(
            out,
            "{},{},\"{}\",{},{},{}",
            self.id,
            self.email,
            self.name.replace('"', "\"\""),
            self.age,
            self.date,
            score
        )
    }
}

fn create(path: &Path) -> Res<BufWriter<File>> {
    let f = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(HEADER.as_bytes()).map_err(|e| e.to_string())?;
    Ok(w)
}

/// Writes `customers-<rows>.csv` (and with `variants` the clean and prefill
/// files) under `dir`. The same `rows` and `seed` give the same bytes.
pub fn generate(dir: &Path, rows: u64, seed: u64, variants: bool) -> Res<DataSet> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let full = dir.join(format!("customers-{rows}.csv"));
    let clean = dir.join(format!("customers-{rows}-clean.csv"));
    let prefill = dir.join(format!("customers-{rows}-prefill.csv"));
    let mut out = create(&full)?;
    let mut clean_out = if variants {
        Some(create(&clean)?)
    } else {
        None
    };
    let mut prefill_out = if variants {
        Some(create(&prefill)?)
    } else {
        None
    };

    let mut rng = Rng(seed);
    let mut used = IdSet::new(rows);
    let mut clean_ids = IdSet::new(rows);
    let (mut invalid, mut duplicates, mut clean_rows, mut prefill_rows) = (0, 0, 0, 0);
    let base_day = 16_436; // 2015-01-01
    for n in 1..=rows {
        let draw = rng.below(1_000_000);
        let bad = draw < INVALID_PPM;
        let repeat = !bad && draw < INVALID_PPM + DUPLICATE_PPM && n > 1;
        let id = if repeat {
            // An id some earlier row has: walk down from a random earlier row
            // to one whose own id exists (repeated rows leave gaps).
            let mut j = 1 + rng.below(n - 1);
            while j > 1 && !used.contains(j) {
                j -= 1;
            }
            j
        } else {
            n
        };
        if used.contains(id) {
            duplicates += 1;
        }
        used.insert(id);

        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let name = if rng.below(50) == 0 {
            format!("{last}, {first} \"{}\"", rng.pick(NICK))
        } else {
            format!("{last}, {first}")
        };
        let mut email = format!(
            "{}.{}{id}@{}",
            first.to_ascii_lowercase(),
            last.to_ascii_lowercase(),
            rng.pick(DOMAINS)
        );
        let mut age = (18 + rng.below(73)).to_string();
        if bad {
            invalid += 1;
            if rng.below(2) == 0 {
                email = rng.pick(BAD_EMAILS).to_owned();
            } else {
                age = rng.pick(BAD_AGES).to_owned();
            }
        }
        let day = base_day + i64::try_from(rng.below(3_650)).unwrap_or(0);
        let (y, m, d) = civil_from_days(day);
        let cents = rng.below(100_000);
        let row = Row {
            id,
            email,
            name,
            age,
            date: format!("{y:04}-{m:02}-{d:02}"),
            score: format!("{}.{:02}", cents / 100, cents % 100),
        };
        row.write(&mut out, &row.score).map_err(|e| e.to_string())?;
        if !bad && !clean_ids.contains(id) {
            clean_ids.insert(id);
            clean_rows += 1;
            if let Some(c) = clean_out.as_mut() {
                row.write(c, &row.score).map_err(|e| e.to_string())?;
            }
            if let Some(p) = prefill_out.as_mut().filter(|_| id % 2 == 1) {
                row.write(p, PREFILL_SCORE).map_err(|e| e.to_string())?;
                prefill_rows += 1;
            }
        }
    }
    for w in [Some(&mut out), clean_out.as_mut(), prefill_out.as_mut()]
        .into_iter()
        .flatten()
    {
        w.flush().map_err(|e| e.to_string())?;
    }
    drop(out);
    let full_bytes = std::fs::metadata(&full).map_err(|e| e.to_string())?.len();
    Ok(DataSet {
        full,
        full_bytes,
        clean: variants.then_some(clean),
        prefill: variants.then_some(prefill),
        rows,
        invalid,
        duplicates,
        clean_rows,
        prefill_rows,
    })
}

/// Cuts `full` into files of at most `rows_per_object` rows, each with the
/// header, named `part-00001.csv`, … under `dir` (emptied first). Lines are
/// records here: the generator never puts a line break inside a field.
pub fn split(full: &Path, dir: &Path, rows_per_object: u64) -> Res<Vec<PathBuf>> {
    use std::io::BufRead;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let input = File::open(full).map_err(|e| format!("cannot read {}: {e}", full.display()))?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, input).lines();
    // The header.
    lines.next();
    let mut parts = Vec::new();
    let mut out: Option<BufWriter<File>> = None;
    let mut in_part = 0;
    for line in lines {
        let line = line.map_err(|e| e.to_string())?;
        if out.is_none() || in_part == rows_per_object {
            if let Some(mut w) = out.take() {
                w.flush().map_err(|e| e.to_string())?;
            }
            let path = dir.join(format!("part-{:05}.csv", parts.len() + 1));
            out = Some(create(&path)?);
            parts.push(path);
            in_part = 0;
        }
        if let Some(w) = out.as_mut() {
            writeln!(w, "{line}").map_err(|e| e.to_string())?;
        }
        in_part += 1;
    }
    if let Some(mut w) = out {
        w.flush().map_err(|e| e.to_string())?;
    }
    Ok(parts)
}

/// Gzip-compressed copies (`<name>.gz`, `gzip -6`, the command's default)
/// of `objects` under `dir`: the same bytes once decompressed.
pub fn gzip_all(objects: &[(String, PathBuf)], dir: &Path) -> Res<Vec<(String, PathBuf)>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    objects
        .iter()
        .map(|(name, path)| {
            let name = format!("{name}.gz");
            let target = dir.join(&name);
            let out = File::create(&target)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            let status = std::process::Command::new("gzip")
                .args(["-6", "-c", "-n"])
                .arg(path)
                .stdout(out)
                .status()
                .map_err(|e| format!("cannot run gzip (a standard command): {e}"))?;
            if !status.success() {
                return Err(format!("gzip {} failed: {status}", path.display()));
            }
            Ok((name, target))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(16_436), (2015, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn same_seed_same_bytes_and_expected_shares() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-data-{}", std::process::id()));
        let a = generate(&dir.join("a"), 200_000, 7, true).expect("generate a");
        let b = generate(&dir.join("b"), 200_000, 7, true).expect("generate b");
        let bytes = |p: &Path| std::fs::read(p).expect("read");
        assert_eq!(bytes(&a.full), bytes(&b.full));
        // 0.1% each, give or take the randomness of 200,000 draws.
        assert!((120..=280).contains(&a.invalid), "{}", a.invalid);
        assert!((120..=280).contains(&a.duplicates), "{}", a.duplicates);
        assert!(a.clean_rows <= a.rows - a.invalid - a.duplicates + 5);
        let parts = split(&a.full, &dir.join("parts"), 30_000).expect("split");
        assert_eq!(parts.len(), 7);
        let rows: usize = parts
            .iter()
            .map(|p| String::from_utf8(bytes(p)).expect("utf8").lines().count() - 1)
            .sum();
        assert_eq!(rows, 200_000);
        let clean = String::from_utf8(bytes(a.clean.as_deref().expect("clean"))).expect("utf8");
        assert_eq!(clean.lines().count() as u64, a.clean_rows + 1);
        assert!(clean.contains("\"\""), "some names hold doubled quotes");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
