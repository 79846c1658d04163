//! Progress of a long build or refresh, reported to the caller as
//! `(phase, done, total)` in bytes: each phase counts from zero to its own
//! total, so a caller can draw one bar per phase. [`Clock`] times the
//! phases (wall and process CPU) for the manifest and `stats()`.

use std::time::Instant;

/// What a build or refresh is busy with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading files and writing n-gram segments; bytes of every file read.
    Reading,
    /// Extracting symbols; bytes of the files parsed. A build extracts
    /// while it reads, and reports this phase whole once the reading ends.
    Symbols,
    /// Writing the definition index (term files); bytes of the files read.
    Terms,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Symbols => "symbols",
            Phase::Terms => "terms",
        }
    }
}

/// The callback a build or refresh reports to.
pub type Progress<'a> = dyn FnMut(Phase, u64, u64) + 'a;

/// A callback that ignores every report.
pub fn silent() -> impl FnMut(Phase, u64, u64) {
    |_, _, _| {}
}

/// Wall and CPU seconds of one step of a build.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseTime {
    pub name: String,
    pub wall: f64,
    pub cpu: f64,
}

/// User + system CPU seconds of this process so far (all its threads).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Times consecutive steps: each [`Clock::lap`] closes the step since the
/// previous one. CPU time is the whole process's, so a host thread busy
/// elsewhere during a build shows up in it.
pub struct Clock {
    at: Instant,
    cpu: f64,
    pub laps: Vec<PhaseTime>,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { at: Instant::now(), cpu: process_cpu_seconds(), laps: Vec::new() }
    }
}

impl Clock {
    pub fn lap(&mut self, name: &str) {
        let (now, cpu) = (Instant::now(), process_cpu_seconds());
        self.laps.push(PhaseTime { name: name.to_string(), wall: (now - self.at).as_secs_f64(), cpu: cpu - self.cpu });
        (self.at, self.cpu) = (now, cpu);
    }
}

/// The manifest's text for phase times: `name=wall/cpu` joined by spaces.
pub fn format_phases(laps: &[PhaseTime]) -> String {
    laps.iter().map(|p| format!("{}={:.3}/{:.3}", p.name, p.wall, p.cpu)).collect::<Vec<_>>().join(" ")
}

/// Reads [`format_phases`]'s text back; malformed entries are left out.
pub fn parse_phases(text: &str) -> Vec<PhaseTime> {
    text.split_whitespace()
        .filter_map(|e| {
            let (name, times) = e.split_once('=')?;
            let (w, c) = times.split_once('/')?;
            Some(PhaseTime { name: name.to_string(), wall: w.parse().ok()?, cpu: c.parse().ok()? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_cpu_advances() {
        let mut c = Clock::default();
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        c.lap("spin");
        c.lap("nothing");
        assert!(c.laps[0].cpu > 0.0 && c.laps[0].wall > 0.0);
        let back = parse_phases(&format_phases(&c.laps));
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].name, "nothing");
        assert!((back[0].wall - c.laps[0].wall).abs() < 1e-3);
        assert!(parse_phases("x=1 y=a/2 z=1/2").len() == 1);
    }
}
