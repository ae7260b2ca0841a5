//! Golden scenarios for the cache, in the spirit of Postfix's scache_multi.in/.ref.
//!
//! Each `tests/golden/NAME.in` is run against a fresh [`Cache`] on a manual clock and the
//! transcript must equal `NAME.ref` byte for byte; `GOLDEN_BLESS=1` rewrites the .ref files
//! instead (check them by hand against spec §4 afterwards). The runner trusts nothing but the
//! cache's public API.
//!
//! The command language, one command per line; blank lines and `#` comments are copied:
//!
//! ```text
//! at MS | sleep MS                     move the clock, waking at every deadline on the way
//! jump MS                              set the clock and expire once, like a late wake-up
//! save_endp TTL ENDPOINT PROPERTY CONN find_endp ENDPOINT
//! save_dest TTL DEST PROPERTY ENDPOINT find_dest DEST
//! remove CONN | remove_oldest | size | next_deadline | dump | drain
//! ```
//!
//! A command prints `COMMAND -> RESULT`; expiries it causes follow, indented. Words are split
//! on white space; `""` is the empty string and `\xHH` any byte, in input and output alike.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

use scache_core::cache::{Binding, Cache, Clock, ManualClock, Millis, SessionId};

struct Run {
    cache: Cache<String>,
    clock: ManualClock,
    /// The id of each connection tag saved so far.
    ids: HashMap<String, SessionId>,
    out: String,
}

impl Run {
    fn new() -> Self {
        Self { cache: Cache::new(), clock: ManualClock::new(0), ids: HashMap::new(), out: String::new() }
    }

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn execute(&mut self, command: &str, args: &[Vec<u8>]) -> Result<String, String> {
        let now = self.clock.now();
        let result = match (command, args) {
            ("at", [to]) => self.wake_until(number(to)?)?,
            ("sleep", [by]) => self.wake_until(now + number(by)?)?,
            ("jump", [to]) => {
                let to = number(to)?;
                if to < now {
                    return Err(format!("the clock cannot go back to {to}"));
                }
                self.clock.set(to);
                self.expire(to);
                format!("now {to}")
            }
            ("save_endp", [ttl, endpoint, property, conn]) => {
                let conn = String::from_utf8_lossy(conn).into_owned();
                let id = self.cache.save_endp(now, number(ttl)?, endpoint, property, conn.clone());
                self.ids.insert(conn, id);
                "saved".into()
            }
            ("find_endp", [endpoint]) => match self.cache.find_endp(endpoint) {
                Some(found) => format!("{} {}", found.conn, show(&found.property)),
                None => "miss".into(),
            },
            ("save_dest", [ttl, dest, property, endpoint]) => {
                match self.cache.save_dest(now, number(ttl)?, dest, property, endpoint) {
                    Binding::Added => "added".into(),
                    Binding::Refreshed => "refreshed".into(),
                }
            }
            ("find_dest", [dest]) => match self.cache.find_dest(dest) {
                Some(hit) => format!("{} {} {}", hit.conn, show(&hit.dest_property), show(&hit.endp_property)),
                None => "miss".into(),
            },
            ("remove", [conn]) => {
                let id = self.ids.get(&*String::from_utf8_lossy(conn)).ok_or("no such connection was saved")?;
                match self.cache.remove(*id) {
                    Some(gone) => format!("{} {}", gone.conn, show(&gone.endpoint)),
                    None => "gone".into(),
                }
            }
            ("remove_oldest", []) => match self.cache.remove_oldest() {
                Some(gone) => format!("{} {}", gone.conn, show(&gone.endpoint)),
                None => "empty".into(),
            },
            ("size", []) => {
                let size = self.cache.size();
                format!("dest={} endp={} sess={}", size.dest_count, size.endp_count, size.sess_count)
            }
            ("next_deadline", []) => self.cache.next_deadline().map_or("none".into(), |at| at.to_string()),
            ("drain", []) => {
                let conns: Vec<String> = self.cache.drain().into_iter().map(|gone| gone.conn).collect();
                if conns.is_empty() { "nothing".into() } else { conns.join(" ") }
            }
            ("dump", []) => return Ok(self.dump()),
            _ => return Err(format!("unknown command or wrong number of arguments: {command}")),
        };
        Ok(result)
    }

    /// Moves the clock to `to` as an ideal event loop would: sleep until the next deadline,
    /// expire, repeat. Each wake-up checks that `next_deadline` named a timer that was due.
    fn wake_until(&mut self, to: Millis) -> Result<String, String> {
        if to < self.clock.now() {
            return Err(format!("the clock cannot go back to {to}"));
        }
        while let Some(deadline) = self.cache.next_deadline().filter(|&at| at <= to) {
            let wake = deadline.max(self.clock.now());
            self.clock.set(wake);
            if self.expire(wake) == 0 {
                return Err(format!("next_deadline said {deadline} but nothing expired"));
            }
        }
        self.clock.set(to);
        Ok(format!("now {to}"))
    }

    fn expire(&mut self, now: Millis) -> usize {
        let mut sessions = Vec::new();
        let bindings = self.cache.expire(now, &mut sessions);
        for gone in &sessions {
            let text = format!("  expired {} {} at {now}", gone.conn, show(&gone.endpoint));
            self.line(&text);
        }
        if bindings > 0 {
            let plural = if bindings == 1 { "" } else { "s" };
            self.line(&format!("  expired {bindings} binding{plural} at {now}"));
        }
        sessions.len() + bindings
    }

    /// The whole cache, labels sorted so the transcript does not depend on table order.
    fn dump(&self) -> String {
        let conn_of = |id: SessionId| self.ids.iter().find(|&(_, &known)| known == id).map_or("?", |(conn, _)| conn);
        let mut lines = Vec::new();
        for (dest, bindings) in self.cache.destinations() {
            let shown: Vec<String> =
                bindings.map(|b| format!("{} {} until {}", show(b.endpoint), show(b.property), b.deadline)).collect();
            lines.push(format!("  dest {}: {}", show(dest), shown.join("; ")));
        }
        for (endpoint, sessions) in self.cache.endpoints() {
            let shown: Vec<String> = sessions
                .map(|s| format!("{} {} saved {} until {}", conn_of(s.id), show(s.property), s.saved_at, s.deadline))
                .collect();
            lines.push(format!("  endp {}: {}", show(endpoint), shown.join("; ")));
        }
        lines.sort();
        let mut out = "listed".to_string();
        for line in lines {
            write!(out, "\n{line}").expect("writing to a String");
        }
        out
    }
}

fn number(word: &[u8]) -> Result<Millis, String> {
    std::str::from_utf8(word).ok().and_then(|w| w.parse().ok()).ok_or_else(|| format!("not a number: {}", show(word)))
}

fn parse_word(word: &str) -> Result<Vec<u8>, String> {
    if word == "\"\"" {
        return Ok(Vec::new());
    }
    let mut bytes = Vec::new();
    let mut rest = word.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'\\' {
            let hex = tail.get(1..3).filter(|_| tail.first() == Some(&b'x')).ok_or(format!("bad escape in {word}"))?;
            let hex = std::str::from_utf8(hex).map_err(|_| format!("bad escape in {word}"))?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape in {word}"))?);
            rest = &tail[3..];
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    Ok(bytes)
}

fn show(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "\"\"".into();
    }
    let plain = |b: &u8| b.is_ascii_graphic() && !matches!(b, b'\\' | b'"');
    bytes.iter().map(|b| if plain(b) { char::from(*b).to_string() } else { format!("\\x{b:02x}") }).collect()
}

fn run_script(script: &str) -> Result<String, String> {
    let mut run = Run::new();
    for (number, text) in script.lines().enumerate() {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            run.line(trimmed);
            continue;
        }
        let mut words = trimmed.split_whitespace();
        let command = words.next().expect("a non-empty line has a word");
        let at_line = |e: String| format!("line {}: {e}", number + 1);
        let args = words.map(parse_word).collect::<Result<Vec<_>, _>>().map_err(at_line)?;
        let header = format!("{} ->", words_of(trimmed));
        let header_at = run.out.len();
        let result = run.execute(command, &args).map_err(at_line)?;
        // Expiry lines were written while the command ran; the command line goes above them.
        run.out.insert_str(header_at, &format!("{header} {result}\n"));
    }
    Ok(run.out)
}

/// The command as written, with runs of white space collapsed.
fn words_of(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A line diff (longest common subsequence) marking expected lines `-` and actual lines `+`.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] { common[i + 1][j + 1] + 1 } else { common[i + 1][j].max(common[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            writeln!(out, "  {}", a[i]).expect("writing to a String");
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            writeln!(out, "- {}", a[i]).expect("writing to a String");
            i += 1;
        } else {
            writeln!(out, "+ {}", b[j]).expect("writing to a String");
            j += 1;
        }
    }
    out
}

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut inputs: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|entry| entry.expect("readable directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "in"))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn golden_scenarios() {
    let bless = env::var_os("GOLDEN_BLESS").is_some_and(|v| v == "1");
    let inputs = scenarios();
    assert!(!inputs.is_empty(), "no scenarios found");
    let mut failures = Vec::new();
    for input in inputs {
        let name = input.file_stem().expect("a file name").to_string_lossy().into_owned();
        let script = fs::read_to_string(&input).expect("readable scenario");
        let actual = match run_script(&script) {
            Ok(actual) => actual,
            Err(error) => {
                failures.push(format!("{name}.in: {error}"));
                continue;
            }
        };
        let reference = input.with_extension("ref");
        if bless {
            fs::write(&reference, &actual).expect("writable .ref");
            continue;
        }
        let expected = fs::read_to_string(&reference).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{name}: transcript differs from {name}.ref (- expected, + actual):\n{}",
                diff(&expected, &actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_round_trip_through_escapes() {
    for word in ["plain", "\"\"", "a\\x20b", "\\x0a\\x00\\xff", "\\x5c\\x22"] {
        assert_eq!(show(&parse_word(word).unwrap()), word);
    }
    assert!(parse_word("bad\\q").is_err());
}

#[test]
fn diff_marks_changed_lines() {
    assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
}
