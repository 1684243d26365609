fn main() {
    #[cfg(all(unix, not(target_env = "musl")))]
    freed_pages::keep_under_ceiling();
    std::process::exit(naslake::cli::main());
}

/// jemalloc, not glibc's malloc: a run allocates and frees batch-sized buffers
/// (megabytes each) on several threads, and glibc's per-thread arenas kept the
/// freed ones, so peak RSS crept up with the input. Measured on scripts/bench-csv's
/// data, one run each: glibc 229 MiB at 1 GB and 273 MiB at 10 GB (45 s); jemalloc
/// about 230 MiB at both (41 s at 10 GB).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts:
///
/// - One arena per CPU, each thread allocating from the arena of the CPU it was
///   last seen on (`percpu_arena:percpu`; jemalloc checks again when another
///   thread has used that arena), where jemalloc's default is four per CPU with
///   threads bound to one for life. Memory freed goes back to the arena it came
///   from, and only threads allocating from that arena reuse it: the blocking
///   threads that read and write files and the workers that free what they
///   read spread freed pages over eight arenas on two cores. The end of a 5 GB
///   run, which joins 122 partitions' files on fourteen threads more, rose to a
///   peak of 233–236 MiB that way, against 210–215 with one arena per CPU
///   (docs/benchmarks.md, "One arena per CPU"). `narenas:2` did as well here
///   but fixes the number whatever the machine. Where the CPU counts the system
///   gives disagree (a cpuset, `taskset`), jemalloc keeps its default arenas and
///   says so once on stderr; under a CPU quota it makes one per host CPU.
/// - Freed pages go back to the system after a second unused (`dirty_decay_ms`;
///   jemalloc's default is 10 s), and straight back, without the lazy middle
///   state whose pages still count in RSS (`muzzy_decay_ms:0`, jemalloc 5.3's
///   default, stated so it stays).
/// - Freed pages kept are held under a ceiling as well ([`freed_pages`]).
///
/// This build's jemalloc is prefixed: `_RJEM_MALLOC_CONF` overrides these, not
/// `MALLOC_CONF` (`tests/test_allocator.py` reads them back from the binary).
#[cfg(all(unix, not(target_env = "musl")))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static MALLOC_CONF: &[u8; 57] = b"percpu_arena:percpu,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// The freed pages jemalloc keeps, held under a ceiling by a thread of their own.
///
/// jemalloc keeps freed pages for reuse and returns them to the system gradually
/// over `dirty_decay_ms` unused. Reuse is what makes it fast (a page given back to the system
/// is faulted in and zeroed again when next needed), but the pages kept count in
/// the kernel's RSS: a run's peak is what it holds plus what was freed in the
/// second before, and a longer run meets a larger burst of frees. Over 10 GB of
/// CSV the peaks were 1.076–1.125× those over 1 GB in most runs of
/// `scripts/bench-flat`, with the memory naslake holds level (docs/benchmarks.md,
/// the paragraphs on `bench-flat` and "What the peaks hold"). Returning pages sooner
/// (`dirty_decay_ms:20`) bounded that but cost the plain-CSV run 5%: it gives
/// back every page soon after it is freed, bursts or not.
///
/// A ceiling only acts on the bursts: every 10 ms this thread reads how many
/// freed pages jemalloc keeps, and when they exceed a quarter of the pages in use
/// or 32 MiB, whichever is more, it has every arena give its freed pages back.
/// A quarter of what is in use keeps the ceiling in proportion on a machine
/// whose runs hold more (more cores, wider tables); 32 MiB keeps small runs
/// from giving back what they are about to reuse. Over 1 GB of CSV this cost
/// 1.6% and 4.3% of the run's time in two sittings; the ratio of the peaks went
/// to 1.022–1.035× in three runs (docs/benchmarks.md, "A ceiling on the freed
/// pages"). Purging only when the pages kept and in use together passed the
/// highest count in use so far (plus the same slack) purged once over 1 GB,
/// and left the peaks where they were without the ceiling: the peaks hold
/// pages kept while those in use are at their highest, which only a ceiling on
/// the kept pages alone reaches.
///
/// `NASLAKE_FREED_PAGES_CEILING=off` leaves returning pages to the decay alone
/// (to measure without the ceiling, or to try jemalloc's own options through
/// `_RJEM_MALLOC_CONF` as they are).
#[cfg(all(unix, not(target_env = "musl")))]
mod freed_pages {
    use std::ffi::{CStr, c_void};
    use std::io;
    use std::ptr;
    use std::time::Duration;
    use tikv_jemalloc_sys::{mallctlbymib, mallctlnametomib};

    /// How often the kept pages are counted.
    const PERIOD: Duration = Duration::from_millis(10);
    /// The ceiling never goes below this many bytes.
    const FLOOR: usize = 32 << 20;

    /// The variable that turns the ceiling off.
    const SWITCH: &str = "NASLAKE_FREED_PAGES_CEILING";

    /// Whether jemalloc should give its kept pages back: more of them than a
    /// quarter of the pages in use, or than [`FLOOR`] when that is more.
    pub fn over_ceiling(kept_bytes: usize, active_bytes: usize) -> bool {
        kept_bytes > FLOOR.max(active_bytes / 4)
    }

    /// One of jemalloc's controls, looked up by name once (a "MIB").
    struct Control {
        name: &'static CStr,
        mib: [usize; 4],
        len: usize,
    }

    impl Control {
        fn look_up(name: &'static CStr) -> io::Result<Self> {
            let mut mib = [0; 4];
            let mut len = mib.len();
            // SAFETY: a NUL-terminated name, and room for `len` components.
            let code = unsafe { mallctlnametomib(name.as_ptr(), mib.as_mut_ptr(), &mut len) };
            let control = Self { name, mib, len };
            control.checked(code)?;
            Ok(control)
        }

        /// jemalloc answers with an errno value, 0 for success.
        fn checked(&self, code: i32) -> io::Result<()> {
            match code {
                0 => Ok(()),
                errno => Err(io::Error::other(format!(
                    "jemalloc's {:?}: {}",
                    self.name,
                    io::Error::from_raw_os_error(errno)
                ))),
            }
        }

        /// jemalloc's `mallctlbymib` on this control.
        ///
        /// # Safety
        /// `old` is null or valid for writing `*old_len` bytes, with `old_len`
        /// then valid for reading and writing a `usize` (null when `old` is),
        /// `new` is null or valid for reading `new_len` bytes, and what is written is a value of
        /// the control's own type (jemalloc checks the sizes, not the meaning: a
        /// number written where it takes a pointer would be followed).
        unsafe fn ctl(
            &self,
            old: *mut c_void,
            old_len: *mut usize,
            new: *mut c_void,
            new_len: usize,
        ) -> io::Result<()> {
            // SAFETY: the MIB jemalloc gave for this name; the rest is the caller's.
            let code =
                unsafe { mallctlbymib(self.mib.as_ptr(), self.len, old, old_len, new, new_len) };
            self.checked(code)
        }

        /// Reads a `size_t` control. Safe: reading writes only into `value`, and
        /// jemalloc refuses (EINVAL) a control whose value is of another size.
        fn read(&self) -> io::Result<usize> {
            let mut value = 0usize;
            let mut size = size_of::<usize>();
            // SAFETY: `value` is valid for `size` bytes; nothing is written.
            unsafe {
                self.ctl((&raw mut value).cast(), &mut size, ptr::null_mut(), 0)?;
            }
            Ok(value)
        }

        /// Writes a `u64` control.
        ///
        /// # Safety
        /// The control takes a `u64` that is a number, not an address (`epoch`).
        unsafe fn write(&self, mut value: u64) -> io::Result<()> {
            // SAFETY: `value` is valid for its size; the caller vouches for its meaning.
            unsafe {
                self.ctl(
                    ptr::null_mut(),
                    ptr::null_mut(),
                    (&raw mut value).cast(),
                    size_of::<u64>(),
                )
            }
        }

        /// Runs a control that takes and gives nothing.
        ///
        /// # Safety
        /// The control is one whose running is safe at any time (a purge).
        unsafe fn call(&self) -> io::Result<()> {
            // SAFETY: null old and new values; the caller vouches for the control.
            unsafe { self.ctl(ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), 0) }
        }
    }

    /// The controls the thread uses. "4096" is jemalloc's index for all arenas
    /// together (`MALLCTL_ARENAS_ALL`).
    struct Arenas {
        page: usize,
        /// Advancing it refreshes the counters below ([`Arenas::refresh`]).
        epoch: Control,
        /// Pages freed and kept ("dirty").
        dirty: Control,
        /// Pages freed, marked reusable by the kernel but still counted in RSS
        /// until it takes them ("muzzy"; none with the options above, some if
        /// `_RJEM_MALLOC_CONF` sets `muzzy_decay_ms`).
        muzzy: Control,
        /// Pages in use.
        active: Control,
        /// Gives every arena's kept pages back to the system.
        purge: Control,
    }

    impl Arenas {
        fn look_up() -> io::Result<Self> {
            Ok(Self {
                page: Control::look_up(c"arenas.page")?.read()?,
                epoch: Control::look_up(c"epoch")?,
                dirty: Control::look_up(c"stats.arenas.4096.pdirty")?,
                muzzy: Control::look_up(c"stats.arenas.4096.pmuzzy")?,
                active: Control::look_up(c"stats.arenas.4096.pactive")?,
                purge: Control::look_up(c"arena.4096.purge")?,
            })
        }

        /// Has jemalloc refresh the counters read below (they are cached).
        fn refresh(&self) -> io::Result<()> {
            // SAFETY: `epoch` takes a number (jemalloc's ctl.c, `epoch_ctl`).
            unsafe { self.epoch.write(1) }
        }

        /// The bytes in freed pages kept, as of the last refresh.
        fn kept(&self) -> io::Result<usize> {
            Ok((self.dirty.read()?)
                .saturating_add(self.muzzy.read()?)
                .saturating_mul(self.page))
        }

        /// The bytes in pages in use, as of the last refresh.
        fn active(&self) -> io::Result<usize> {
            Ok(self.active.read()?.saturating_mul(self.page))
        }

        /// Gives every arena's kept pages back to the system.
        fn purge(&self) -> io::Result<()> {
            // SAFETY: a purge takes and gives nothing, and may run at any time
            // (jemalloc's ctl.c, `arena_i_purge_ctl`).
            unsafe { self.purge.call() }
        }

        /// Counts the kept pages and gives them back when over the ceiling;
        /// whether it did.
        fn trim(&self) -> io::Result<bool> {
            self.refresh()?;
            if !over_ceiling(self.kept()?, self.active()?) {
                return Ok(false);
            }
            self.purge()?;
            Ok(true)
        }
    }

    /// Starts the thread, unless [`SWITCH`] is `off`. If jemalloc does not
    /// answer, says so on stderr (logging is not set up yet) and leaves returning
    /// pages to the decay alone.
    pub fn keep_under_ceiling() {
        match std::env::var_os(SWITCH) {
            Some(v) if v == "off" => return,
            Some(v) if !v.is_empty() => {
                eprintln!("naslake: {SWITCH} is `off` or unset, not {v:?}: the ceiling stays");
            }
            _ => {}
        }
        let started = Arenas::look_up().and_then(|arenas| {
            std::thread::Builder::new()
                .name("freed-pages".into())
                .spawn(move || run(&arenas))
        });
        if let Err(e) = started {
            eprintln!("naslake: freed memory goes back to the system only as it ages: {e}");
        }
    }

    fn run(arenas: &Arenas) {
        loop {
            std::thread::sleep(PERIOD);
            if let Err(e) = arenas.trim() {
                // Logging is set up by now (after the first tick, in all but a
                // race with start-up), and its JSON lines may go where stderr
                // does not.
                tracing::warn!(error = %e, "freed memory goes back to the system only as it ages from now");
                return;
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_ceiling_is_a_quarter_of_what_is_in_use_and_never_under_the_floor() {
            assert!(!over_ceiling(FLOOR, 0));
            assert!(over_ceiling(FLOOR + 1, 0));
            assert!(!over_ceiling(FLOOR + 1, 4 * FLOOR + 4));
            assert!(!over_ceiling(100 << 20, 400 << 20));
            assert!(over_ceiling((100 << 20) + 1, 400 << 20));
        }

        /// On the test binary's own jemalloc (this file's allocator and options):
        /// pages freed beyond the ceiling are given back, and a second look finds
        /// nothing to do.
        #[test]
        fn freed_pages_over_the_ceiling_go_back() {
            if std::env::var_os("_RJEM_MALLOC_CONF").is_some() {
                // Options such as `dirty_decay_ms:0` would give pages back
                // before the count below: the test is of the built-in ones.
                eprintln!("skipped: _RJEM_MALLOC_CONF is set");
                return;
            }
            let arenas = Arenas::look_up().expect("jemalloc's controls");
            assert_eq!(arenas.page % 4096, 0, "page size {}", arenas.page);
            // Blocks of 2 MiB (jemalloc's extents, over what its thread caches
            // keep), written to so that their pages are resident when freed.
            let blocks: Vec<Vec<u8>> = (0..48).map(|i| vec![i as u8 + 1; 2 << 20]).collect();
            assert!(blocks.iter().all(|b| b[4096] != 0));
            drop(blocks);
            arenas.refresh().unwrap();
            let kept = arenas.kept().unwrap();
            assert!(kept > FLOOR, "only {kept} bytes kept after freeing 96 MiB");
            assert!(arenas.trim().unwrap());
            arenas.refresh().unwrap();
            let after = arenas.kept().unwrap();
            assert!(after < 4 << 20, "{after} bytes still kept after the purge");
            assert!(!arenas.trim().unwrap());
        }
    }
}

/// `hypot`, where the binary's calls to glibc's land (`build.rs` links with
/// `--wrap=hypot`): glibc's own is versioned 2.35, newer than the glibc of the
/// images the binary runs in. `libm` is a port of musl's, accurate within an ulp.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_hypot(x: f64, y: f64) -> f64 {
    libm::hypot(x, y)
}

/// `hypotf`, as [`__wrap_hypot`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
pub extern "C" fn __wrap_hypotf(x: f32, y: f32) -> f32 {
    libm::hypotf(x, y)
}
