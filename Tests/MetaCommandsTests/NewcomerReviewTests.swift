import Foundation
import MetaDB
import MetaModel
import MetaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The newcomer's review (`shared/reviews/newcomer-2026-11-30.md`, issue 18): each test runs
/// the command of one finding as the report gives it (with the report's `$T` being the
/// test's own temporary directory) and checks the output, the exit status and the state
/// afterwards. Image files and the built binary; the tests that need another user or a
/// read-only mount need root and skip without it.
@Suite("newcomer review findings (binary)")
struct NewcomerReviewTests {
    typealias CLI = CreateClearTests.CLI

    static func images(_ dir: TempDir, _ names: [String], size: UInt64 = 8 << 20) throws -> [String] {
        try CreateClearTests.images(dir, names, size: size)
    }

    /// The state database generation of a set (from `db status --json`).
    static func generation(_ cli: CLI, set: String = "local") throws -> Int {
        let out = try cli.must(["db", "status", "-s", set, "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let reps = try #require(doc["replicas"] as? [[String: Any]])
        return reps.compactMap { $0["generation"] as? Int }.max() ?? -1
    }

    static func lines(_ s: String) -> [Substring] { s.split(separator: "\n") }

    // MARK: finding 1: METACTL_LOCK_TIMEOUT=nan

    /// `METACTL_LOCK_TIMEOUT=nan metactl hs create -s qs hsp007` while another process holds
    /// the set lock trapped (SIGILL). Now: a warning, the default 30 s, then one line naming
    /// the busy lock, exit 3 (in use), and nothing changed.
    @Test(.timeLimit(.minutes(2)))
    func finding1LockTimeoutNaN() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        try cli.must(["db", "create", "-s", "qs"] + Self.images(dir, ["q0", "q1", "q2"]))
        let before = try Self.generation(cli, set: "qs")
        // Unusable values without a holder: a warning, and the command works.
        for (i, bad) in ["abc", "-1", "inf"].enumerated() {
            let r = try runCommand([cli.bin, "status", "-s", "qs", "-c"] + [],
                                   environment: cli.environment.merging(["METACTL_LOCK_TIMEOUT": bad]) { $1 })
            #expect(r.ok, "\(bad): \(r.stderr)")
            let hs = try runCommand([cli.bin, "hs", "create", "-s", "qs", "hsp00\(i)"],
                                    environment: cli.environment.merging(["METACTL_LOCK_TIMEOUT": bad]) { $1 })
            #expect(hs.ok, "\(bad): \(hs.stderr)")
            #expect(hs.stderr.contains("METACTL_LOCK_TIMEOUT='\(bad)' is not a number of seconds"), "\(hs.stderr)")
        }
        let afterGood = try Self.generation(cli, set: "qs")
        // Another process holds the lock: this test process, with flock(2) on its own open
        // file description (released by closing it, even when an expectation fails).
        let lockPath = "\(cli.runDir)/qs.lock"
        let fd = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        try #require(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "cannot take \(lockPath)")
        defer { close(fd) }
        let r = try runCommand([cli.bin, "hs", "create", "-s", "qs", "hsp007"],
                               environment: cli.environment.merging(["METACTL_LOCK_TIMEOUT": "nan"]) { $1 })
        #expect(r.status == 3, "exit \(r.status): \(r.stderr)")
        #expect(!r.stderr.contains("runtime failure"))
        #expect(r.stderr.contains("METACTL_LOCK_TIMEOUT='nan' is not a number of seconds"), "\(r.stderr)")
        #expect(r.stderr.contains("lock \(lockPath): set 'qs' is busy: held by another process"), "\(r.stderr)")
        #expect(r.stderr.contains("for more than 30 s"), "\(r.stderr)")
        flock(fd, LOCK_UN)
        #expect(try Self.generation(cli, set: "qs") == afterGood)
        #expect(afterGood > before)
        #expect(!(try cli.must(["status", "-s", "qs", "-c"])).contains("hsp007"))
    }

    // MARK: findings 2, 22, 33: another user

    static var nonRootRunnable: Bool { Privileged.required || (getuid() == 0 && Privileged.has("setpriv")) }

    /// `setpriv --reuid=65534 … metactl serve` on a root-owned set spun 30 s at 100 % CPU and
    /// blamed "another process"; `db status` said "no readable replica"; a missing run dir
    /// gave a raw Foundation error. Now each is one immediate line saying permission denied,
    /// exit 7, and the set is unchanged.
    @Test(.enabled(if: nonRootRunnable, "needs root and setpriv (run as root, or CI with METACTL_REQUIRE_PRIVILEGED_TESTS=1)"),
          .timeLimit(.minutes(2)))
    func findings2And22And33AnotherUser() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        chmod(dir.path, 0o755)
        let cli = try CLI(dir)
        chmod(cli.configDir, 0o755)
        chmod(cli.runDir, 0o755)
        let imgs = try Self.images(dir, ["a", "b", "c"])
        for i in imgs { chmod(i, 0o600) }
        try cli.must(["db", "create"] + imgs)
        try cli.create(["d0", "concat", try dir.image("d.img", size: 8 << 20)])
        let before = try Self.generation(cli)
        let nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", cli.bin]

        let began = Date()
        let serve = try runCommand(nobody + ["serve"], environment: cli.environment)
        #expect(Date().timeIntervalSince(began) < 10, "serve took \(Date().timeIntervalSince(began)) s")
        #expect(serve.status == 7, "exit \(serve.status): \(serve.stderr)")
        #expect(serve.stderr == "metactl: \(cli.runDir)/local.lock: permission denied (run as root, or use your own --run-dir)\n")

        let status = try runCommand(nobody + ["db", "status"], environment: cli.environment)
        #expect(status.status == 7, "exit \(status.status): \(status.stderr)")
        #expect(status.stderr.contains("permission denied"), "\(status.stderr)")
        #expect(!status.stderr.contains("no readable replica"), "\(status.stderr)")

        // A run directory the user cannot create (as /run/metactl is for a user).
        let rootOnly = dir.file("rootonly")
        try FileManager.default.createDirectory(atPath: rootOnly, withIntermediateDirectories: true)
        chmod(rootOnly, 0o755)
        let env = cli.environment.merging(["METACTL_RUN_DIR": "\(rootOnly)/metactl"]) { $1 }
        let create = try runCommand(nobody + ["serve"], environment: env)
        #expect(create.status == 7, "exit \(create.status): \(create.stderr)")
        #expect(create.stderr == "metactl: cannot create \(rootOnly)/metactl: permission denied (run as root, or use --run-dir DIR)\n")
        #expect(!create.stderr.contains("NSCocoaErrorDomain"))
        #expect(try Self.generation(cli) == before)
    }

    // MARK: finding 8: global options before the subcommand

    /// The hint `db status` prints when quorum is lost, run as printed: global options before
    /// the subcommand work (they used to be `Unknown option '-s'`, exit 64).
    @Test func finding8DBStatusHintRunsAsPrinted() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        let imgs = try Self.images(dir, ["g0", "g1", "g2"])
        try cli.must(["-s", "gs", "db", "create"] + imgs)
        try cli.must(["--set", "gs", "create", "g10", "concat", try dir.image("v.img", size: 8 << 20)])
        // "Pull" two of the three replica devices.
        for i in [1, 2] { try FileManager.default.moveItem(atPath: imgs[i], toPath: imgs[i] + ".away") }
        let status = try cli.run(["-s", "gs", "db", "status"])
        let text = status.stdout + status.stderr
        let hint = try #require(text.components(separatedBy: "`").first { $0.contains("db delete") }, "no hint in \(text)")
        #expect(hint == "metactl -s gs db delete --force DEV...")
        var argv = hint.split(separator: " ").map(String.init).dropFirst().filter { $0 != "DEV..." }
        argv += [imgs[1], imgs[2]]
        let r = try cli.run(Array(argv))
        #expect(r.ok, "\(hint): exit \(r.status): \(r.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(try cli.must(["-s", "gs", "db", "status", "--json"]).utf8)) as? [String: Any])
        #expect((doc["quorum"] as? [String: Any])?["writable"] as? Bool == true, "\(doc)")
        #expect((doc["replicas"] as? [[String: Any]])?.count == 1)
        // Every global option in front, in any order, and the old order still works.
        let front = try runCommand([cli.bin, "-v", "--config-dir", cli.configDir, "--run-dir=\(cli.runDir)", "-s", "gs", "status", "-c"])
        #expect(front.ok && front.stdout.contains("g10"), "\(front.stderr)")
        let back = try cli.run(["status", "-c", "-s", "gs"])
        #expect(back.ok && back.stdout == front.stdout, "\(back.stderr)")
        let quiet = try cli.run(["-q", "--set=gs", "status", "g10"])
        #expect(quiet.ok, "\(quiet.stderr)")
    }

    // MARK: finding 11: a failed serve start

    /// `serve -s qs q99` and `serve --listen 1.2.3.4:1 --insecure` fail; the next start must not warn
    /// about an unclean shutdown. The bind error names no API and no errno number.
    @Test(.timeLimit(.minutes(3)))
    func finding11FailedStartKeepsTheCleanFlag() throws {
        let f = try ServeFixture(set: "qs")
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("q", count: 3, size: 8 << 20))
        try f.create("q0", "concat", [try f.dir.image("v.img", size: 8 << 20)])
        func generation() throws -> Int {
            let out = try f.mustRun(["db", "status", "--json"])
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
            return (doc["replicas"] as? [[String: Any]])?.compactMap { $0["generation"] as? Int }.max() ?? -1
        }
        let before = try generation()
        let unknown = try f.run(["serve", "q99"])
        #expect(unknown.status == 2, "\(unknown.stderr)")
        #expect(unknown.stderr == "metactl: q99: no such volume in set 'qs'\n")
        // Refused before anything is committed.
        #expect(try generation() == before)
        let bind = try f.run(["serve", "--listen", "1.2.3.4:1", "--insecure"])
        #expect(bind.status != 0)
        #expect(bind.stderr.hasSuffix("metactl: cannot listen on 1.2.3.4:1: Cannot assign requested address\n"), "\(bind.stderr)")
        #expect(!bind.stderr.contains("bind(") && !bind.stderr.contains("errno"), "\(bind.stderr)")
        // The start that failed to bind put the clean flag back.
        let server = try f.startServer()
        #expect(!server.log.contains("did not shut down cleanly"), "\(server.log)")
        // Finding 38: log lines are `metactl[PID]: message`, no module names or key=value.
        #expect(server.log.contains("metactl[\(server.pid)]: serving set 'qs'"), "\(server.log)")
        #expect(server.log.contains("metactl[\(server.pid)]: NBD listening on \(f.socketPath)"), "\(server.log)")
        #expect(!server.log.contains("[MetaNBD]") && !server.log.contains("socket="), "\(server.log)")
        #expect(server.stop() == 0)
    }

    // MARK: finding 12: read-only config dir

    /// `create x2 concat img/free2.img --config-dir <read-only>` succeeded silently. The
    /// volume is created (the set's own state database has it), with a warning that this
    /// host's registry could not be updated.
    @Test(.enabled(if: Privileged.runnable, "needs root for a read-only bind mount"))
    func finding12ReadOnlyConfigDirIsWarnedAbout() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        try cli.must(["db", "create"] + Self.images(dir, ["a", "b", "c"]))
        try mustRun(["mount", "--bind", cli.configDir, cli.configDir])
        defer { _ = try? runCommand(["umount", cli.configDir]) }
        try mustRun(["mount", "-o", "remount,bind,ro", cli.configDir])
        let free2 = try dir.image("free2.img", size: 8 << 20)
        let r = try cli.run(["create", "x2", "concat", free2, "--config-dir", cli.configDir])
        #expect(r.ok, "\(r.stderr)")
        #expect(r.stdout.contains("x2: Concat/Stripe is set up"))
        #expect(r.stderr.contains("warning: x2 is created, but this host could not record the set's device paths"), "\(r.stderr)")
        #expect(r.stderr.contains("read-only file system"), "\(r.stderr)")
    }

    // MARK: finding 13: import repairs a malformed registry

    @Test func finding13ImportRebuildsAMalformedRegistry() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        try cli.must(["db", "create"] + Self.images(dir, ["a", "b", "c"]))
        try cli.create(["d0", "concat", try dir.image("d.img", size: 8 << 20)])
        let reg = "\(cli.configDir)/sets.json"
        let full = try Data(contentsOf: URL(fileURLWithPath: reg))
        try full.prefix(200).write(to: URL(fileURLWithPath: reg))  // truncated
        let broken = try cli.run(["status"])
        #expect(broken.status == 1)
        #expect(broken.stderr == "metactl: host registry \(reg): malformed (run `metactl import` to rebuild it)\n")
        // The hint, as printed (no scan of this machine's block devices: the test's own set only).
        let r = try cli.run(["import", "--no-scan"])
        #expect(r.ok, "\(r.stderr)")
        #expect(r.stderr.contains("\(reg) was malformed: moved to \(reg).bad"), "\(r.stderr)")
        #expect(r.stdout.contains("4 of 4 devices found"), "\(r.stdout)")
        #expect(FileManager.default.fileExists(atPath: reg + ".bad"))
        #expect(try cli.must(["status", "-c"]).contains("d0"))
    }

    // MARK: finding 14: hs enable changes nothing on error

    @Test func finding14FailedHsEnableCommitsNothing() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        try cli.must(["db", "create"] + Self.images(dir, ["a", "b", "c"]))
        let spare = try dir.image("spare.img", size: 8 << 20)
        try cli.must(["hs", "create", "hsp001", spare])
        let free2 = try dir.image("free2.img", size: 8 << 20)
        let before = try Self.generation(cli)
        for args in [["hs", "enable", free2], ["hs", "enable", spare, free2]] {
            let r = try cli.run(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr == "metactl: \(free2): not a hot spare of set 'local'\n")
            #expect(try Self.generation(cli) == before, "\(args) committed a generation")
        }
        // Enabling an Available spare is accepted and changes nothing either.
        try cli.must(["hs", "enable", spare])
        #expect(try Self.generation(cli) == before)
    }

    // MARK: finding 15: deleting a set

    @Test func finding15DeletingTheLastReplicasDeletesTheSet() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        let reps = try Self.images(dir, ["a", "b", "c"])
        try cli.must(["db", "create"] + reps)
        try cli.create(["d0", "concat", try dir.image("d.img", size: 8 << 20)])
        let busy = try cli.run(["db", "delete", "--force"] + reps)
        #expect(busy.status == 3, "\(busy.stderr)")
        #expect(busy.stderr.contains("still has d0"), "\(busy.stderr)")
        try cli.must(["clear", "d0"])
        let unforced = try cli.run(["db", "delete"] + reps)
        #expect(unforced.status == 65, "\(unforced.stderr)")
        #expect(unforced.stderr == "metactl: deleting every state database replica deletes set 'local': use --force to delete the set\n")
        let r = try cli.run(["db", "delete", "--force"] + reps)
        #expect(r.ok, "\(r.stderr)")
        #expect(r.stdout.contains("set 'local': deleted"))
        for p in reps { #expect(SetDatabase.readLabel(path: p) == nil, "\(p) keeps its label") }
        let gone = try cli.run(["status"])
        #expect(gone.status == 2 && gone.stderr.contains("is not known on this host"), "\(gone.stderr)")
        // The devices are free: a new set takes them without --force.
        try cli.must(["db", "create"] + reps)
    }

    // MARK: finding 21: members named for what they are

    @Test(.timeLimit(.minutes(3)))
    func finding21MembersOfTheSetAreNamed() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        let reps = try f.images("r", count: 3, size: 8 << 20)
        try f.mustRun(["db", "create", reps[0], reps[1]])
        try f.mustRun(["db", "add", reps[2]])
        // SVM habit: metadb first, then metainit on those disks.
        let onReplicas = try f.run(["create", "d10", "raid5"] + reps)
        #expect(onReplicas.status == 3)
        #expect(onReplicas.stderr.hasPrefix("metactl: \(reps[0]): holds a state database replica of set 'local'; replica holders cannot become components"), "\(onReplicas.stderr)")
        let cols = try f.images("c", count: 3, size: 8 << 20)
        try f.create("d10", "raid5", cols, extra: ["--no-init"])
        let server = try f.startServer()
        for (args, text) in [(["create", "x1", "concat", cols[1]], "\(cols[1]): is already a component of d10 in set 'local'"),
                             (["create", "d21", "raid5", cols[0], try f.dir.image("h1.img", size: 8 << 20), try f.dir.image("h2.img", size: 8 << 20)],
                              "\(cols[0]): is already a component of d10 in set 'local'")] {
            let r = try f.run(args)
            #expect(r.status == 3, "\(args): \(r.stderr)")
            #expect(r.stderr == "metactl: \(text)\n")
            #expect(!r.stderr.contains("another program"))
        }
        #expect(server.stop() == 0)
        // The same answer without a server.
        let direct = try f.run(["create", "x1", "concat", cols[1]])
        #expect(direct.stderr == "metactl: \(cols[1]): is already a component of d10 in set 'local'\n")
    }

    // MARK: finding 5: replace and the old device's replicas

    /// Set created by `create` (replicas on its components); `replace … q1 q7`: the old device
    /// keeps its replica; replace now says so, with a command that works.
    @Test func finding5ReplaceSaysTheOldDeviceKeepsItsReplica() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        let q = try Self.images(dir, ["q1", "q2", "q3", "q7"])
        try cli.create(["qs1", "raid5", "--no-init", q[0], q[1], q[2]])
        let r = try cli.run(["replace", "qs1", q[0], q[3]])
        #expect(r.ok, "\(r.stderr)")
        let warning = try #require(Self.lines(r.stdout).first { $0.hasPrefix("warning: \(q[0]) still holds 1 of the 3 state database replicas") }, "\(r.stdout)")
        let hint = try #require(warning.components(separatedBy: "`").first { $0.hasPrefix("metactl db delete") })
        #expect(hint == "metactl db delete --force \(q[0])")
        let del = try cli.run(Array(hint.split(separator: " ").map(String.init).dropFirst()))
        #expect(del.ok, "\(del.stderr)")
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(try cli.must(["db", "status", "--json"]).utf8)) as? [String: Any])
        let devices = (doc["replicas"] as? [[String: Any]])?.compactMap { $0["device"] as? String } ?? []
        #expect(devices == [q[1], q[2]], "\(doc)")
    }

    // MARK: findings 22 (devices held by a server of another run dir), 28 (clear -f with clients)

    /// While `metactl serve` holds the set's devices, a command run with another run
    /// directory said "no readable replica of the state database (no replica found on 0
    /// device(s))": the database looked gone. Now it names the held device, the PID holding
    /// it and the likely cause, exits 3 (in use) and changes nothing. Then `clear -f` of a
    /// volume a client is connected to: the client is disconnected (it used to stay, every
    /// request answered EIO with "Bad file descriptor" in the log).
    @Test(.timeLimit(.minutes(3)))
    func findings22And28HeldByAServerAndClearWithClients() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        try f.create("d0", "concat", [try f.dir.image("v.img", size: 8 << 20)])
        let free = try f.dir.image("free.img", size: 8 << 20)
        let server = try f.startServer()
        let before = try f.mustRun(["status", "-p"])

        let other = f.dir.file("run2")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        let env = f.environment.merging(["METACTL_RUN_DIR": other]) { $1 }
        for args in [["create", "d1", "concat", free], ["hs", "create", "hsp001"], ["serve"]] {
            let r = try runCommand([f.metactl] + args, environment: env)
            #expect(r.status == 3, "\(args): exit \(r.status): \(r.stderr)")
            #expect(r.stderr.hasPrefix("metactl: set 'local': its devices are held by another process ("), "\(args): \(r.stderr)")
            #expect(r.stderr.contains(" is locked by PID \(server.pid)); is a `metactl serve` of this set running with another run directory than \(other)?\n"),
                    "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("no readable replica"), "\(args): \(r.stderr)")
        }
        #expect(try f.mustRun(["status", "-p"]) == before)

        let client = try RawNBDClient(socketPath: f.socketPath)
        _ = try client.connect(export: "d0")
        #expect(try client.read(offset: 0, length: 4096).error == 0)
        #expect(try f.mustRun(["clear", "-f", "d0"]) == "d0: Concat/Stripe is cleared\n")
        #expect(client.waitForClose(), "the client of the cleared volume is disconnected")
        #expect(!server.log.contains("Bad file descriptor"), "\(server.log)")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    // MARK: finding 34: output order through a pipe

    /// `replace … --wait 2>&1 | cat`: the header on stdout came after every progress line on
    /// stderr (stdout was not flushed before the progress started).
    @Test(.timeLimit(.minutes(3)))
    func finding34HeaderBeforeProgressThroughAPipe() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let cols = try f.images("c", count: 3, size: 32 << 20)
        try f.create("d10", "raid5", cols, extra: ["--no-init"])
        let target = try f.dir.image("new.img", size: 32 << 20)
        let server = try f.startServer()
        let r = try runCommand(["sh", "-c", "\"$0\" \"$@\" 2>&1 | cat", f.metactl, "replace", "d10", cols[0], target, "--wait"],
                               environment: f.environment)
        #expect(r.ok, "\(r.stdout)")
        let lines = Self.lines(r.stdout)
        #expect(lines.first == "d10: copying \(cols[0]) to \(target) (redundancy is kept throughout)", "\(r.stdout)")
        #expect(lines.last == "d10: Okay", "\(r.stdout)")
        #expect(lines.dropFirst().dropLast().allSatisfy { $0.hasPrefix("d10: copy ") && $0.contains("% done") }, "\(r.stdout)")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    // MARK: finding 35: Ctrl-C while waiting

    /// Ctrl-C on `replace --wait` exited silently (the resync went on in the server). Now one
    /// line says what happens to the work, and the exit status is 130; `check --wait` the same.
    @Test(.timeLimit(.minutes(3)))
    func finding35InterruptedWaitSaysTheWorkGoesOn() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let cols = try f.images("c", count: 3, size: 32 << 20)
        try f.create("d10", "raid5", cols, extra: ["--no-init"])
        try f.mustRun(["set", "d10", "--resync-rate", "1m:1m"])  // 32 s of work: time to interrupt it
        let target = try f.dir.image("new.img", size: 32 << 20)
        let server = try f.startServer()
        for (args, message) in [
            (["check", "d10", "--wait"],
             "metactl: d10: interrupted; the check continues in the server (follow it with `metactl status d10`, stop it with `metactl check d10 --stop`)\n"),
            (["replace", "d10", cols[1], target, "--wait"],
             "metactl: d10: interrupted; the resync continues in the server (follow it with `metactl status d10`)\n"),
        ] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: f.metactl)
            p.arguments = args
            p.environment = ProcessInfo.processInfo.environment.merging(f.environment) { $1 }
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            // Interrupt once the work is under way (its first progress line).
            var seen = Data()
            let deadline = Date().addingTimeInterval(60)
            while !String(decoding: seen, as: UTF8.self).contains("% done") && Date() < deadline {
                seen += err.fileHandleForReading.availableData
            }
            kill(p.processIdentifier, SIGINT)
            seen += err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 130, "\(args): \(p.terminationStatus)")
            #expect(String(decoding: seen, as: UTF8.self).hasSuffix(message), "\(args): \(String(decoding: seen, as: UTF8.self))")
            if args[0] == "check" {
                // It went on in the server until stopped.
                #expect((try Self.checkRunning(f)) == true)
                #expect(try f.mustRun(["check", "d10", "--stop"]).hasPrefix("d10: check stopped at "))
            }
        }
        // The work went on: the replacement is still being copied.
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        #expect((vol["resync"] as? [String: Any])?["kind"] as? String == "copy", "\(vol)")
        #expect(server.stop() == 0, "log:\n\(server.log)")
    }

    static func checkRunning(_ f: ServeFixture) throws -> Bool? {
        let vol = try #require((try f.statusJSON(["d10"])["volumes"] as? [[String: Any]])?.first)
        return (vol["check"] as? [String: Any])?["running"] as? Bool
    }

    // MARK: finding 27: import

    /// After the registry is lost: `import ONE-IMAGE` finds every image file of the set at
    /// its recorded path (they were reported missing), and `import -s gs` records only `gs`
    /// (`-s` was ignored and every set found was recorded).
    @Test func finding27ImportFindsImageFilesAndHonoursTheSet() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        let local = try Self.images(dir, ["a", "b", "c"])
        try cli.must(["db", "create"] + local)
        try cli.create(["d0", "stripe"] + (try Self.images(dir, ["s0", "s1", "s2", "s3"])))
        let gs = try Self.images(dir, ["g0", "g1", "g2"])
        try cli.must(["db", "create", "-s", "gs"] + gs)
        try cli.create(["-s", "gs", "g1", "concat"] + (try Self.images(dir, ["h0", "h1"])))
        let registry = "\(cli.configDir)/sets.json"
        let statusLocal = try cli.must(["status", "-p"]), statusGS = try cli.must(["status", "-p", "-s", "gs"])
        try FileManager.default.removeItem(atPath: registry)

        // --no-scan: block devices of other tests running at the same time carry sets too.
        let only = try cli.run(["import", "--no-scan", "-s", "gs", gs[0], local[0]])
        #expect(only.ok, "\(only.stderr)")
        #expect(only.stdout.hasPrefix("set 'gs' (") && only.stdout.contains(": 5 of 5 devices found, 3 of 3 replicas readable; recorded"),
                "\(only.stdout)")
        #expect(!only.stdout.contains("set 'local'"), "\(only.stdout)")
        #expect(try cli.must(["status", "-p", "-s", "gs"]) == statusGS)
        let notLocal = try cli.run(["status", "-c"])
        #expect(notLocal.status == 2 && notLocal.stderr.contains("set 'local' is not known on this host"), "\(notLocal.stderr)")

        let nope = try cli.run(["import", "--no-scan", "-s", "nope", local[0]])
        #expect(nope.status == 2)
        #expect(nope.stderr == "metactl: no device carries a label of set 'nope' (sets found: gs, local)\n", "\(nope.stderr)")

        // One image of `local` named: its other six image files are found where the
        // configuration last saw them.
        // A second, different set also named `local` (made on another host's config dir) is
        // named after it: the first is recorded, the second is not (they used to be both
        // "recorded", each over the other).
        let otherDir = try TempDir()
        defer { otherDir.remove() }
        let otherHost = try CLI(otherDir)
        let other = try Self.images(otherDir, ["o0"])
        try otherHost.must(["db", "create"] + other)
        let all = try cli.run(["import", "--no-scan", local[0], other[0]])
        #expect(all.status == 1, "\(all.stderr)\n\(all.stdout)")
        let lines = Self.lines(all.stdout)
        #expect(lines.first?.hasPrefix("set 'local' (") == true
                && lines.first?.hasSuffix(": 7 of 7 devices found, 3 of 3 replicas readable; recorded in \(registry)") == true, "\(all.stdout)")
        #expect(all.stdout.contains(": 1 of 1 devices found, 1 of 1 replicas readable; not recorded\n  a different set named 'local' ("),
                "\(all.stdout)")
        #expect(!all.stdout.contains("missing:"), "\(all.stdout)")
        #expect(try cli.must(["status", "-p"]) == statusLocal)
    }

    // MARK: findings 24, 25, 39: option parsing, sizes, JSON errors

    @Test func findings24And25And39ParsingAndJSONErrors() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        try cli.must(["db", "create"] + Self.images(dir, ["a", "b", "c"]))
        // -h is help, also in create; the pool is --hot-spare-pool.
        let help = try cli.run(["create", "-h"])
        #expect(help.ok, "\(help.stderr)")
        #expect(help.stdout.contains("--hot-spare-pool <hsp>"), "\(help.stdout)")
        // Parser errors are one line, exit 64, pointing at the help.
        let unknown = try cli.run(["status", "-x"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr == "metactl: Unknown option '-x' (see `metactl status --help`)\n")
        // Sizes: "not a size", exit 65 (bad argument value).
        let imgs = try Self.images(dir, ["s0", "s1"])
        let garbage = try cli.run(["create", "s", "stripe", "-i", "garbage"] + imgs)
        #expect(garbage.status == 65)
        #expect(garbage.stderr == "metactl: bad size 'garbage': not a size (a number with an optional unit k, m, g, t or b)\n")
        // Negative numbers: the parser reads `-5` as an option; the line says what is wrong.
        let negative = try cli.run(["create", "s", "stripe", "-i", "-5"] + imgs)
        #expect(negative.status == 64)
        #expect(negative.stderr == "metactl: -i -5: negative values are not accepted (see `metactl create --help`)\n")
        let copies = try cli.run(["db", "add", "--copies", "-1", imgs[0]])
        #expect(copies.stderr == "metactl: --copies -1: negative values are not accepted (see `metactl db add --help`)\n")
        // `-i DEV` (the size forgotten) names the size, not "no devices given".
        let forgot = try cli.run(["create", "s", "stripe", "-i", imgs[0]])
        #expect(forgot.status == 65 && forgot.stderr.hasPrefix("metactl: bad size '\(imgs[0])'"), "\(forgot.stderr)")
        let none = try cli.run(["create", "s", "stripe"])
        #expect(none.status == 64 && none.stderr == "metactl: s: no devices given\n", "\(none.stderr)")
        // --json on an unknown set: a JSON error object with its code.
        let json = try cli.run(["status", "--json", "-s", "nope"])
        #expect(json.status == 2)
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)")
        let err = try #require(doc["error"] as? [String: Any])
        #expect(err["code"] as? String == "notFound")
        #expect(err["exitStatus"] as? Int == 2)
        #expect((err["message"] as? String)?.hasPrefix("set 'nope' is not known on this host") == true)
    }

    // MARK: typed errors (issue 14 point 4)

    /// The same failure exits with the same status, and `--json` carries the same code, with
    /// and without a running server (the code crosses the control socket).
    @Test(.timeLimit(.minutes(3)))
    func sameFailureSameExitStatusWithAndWithoutAServer() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let cols = try f.images("c", count: 3, size: 8 << 20)
        try f.create("d10", "raid5", cols, extra: ["--no-init"])
        let free = try f.dir.image("free.img", size: 8 << 20)
        let cases: [([String], Int32, String)] = [
            (["status", "d99"], 2, "notFound"),
            (["clear", "d99"], 2, "notFound"),
            (["hs", "enable", free], 2, "notFound"),
            (["create", "x1", "concat", cols[0]], 3, "inUse"),
            (["create", "d10", "concat", free], 3, "inUse"),
            (["create", "Bad", "concat", free], 65, "invalidArgument"),
            (["replace", "d10", "--enable", cols[0]], 65, "invalidArgument"),
            (["db", "add", "--copies", "0", free], 65, "invalidArgument"),
        ]
        func results() throws -> [Int32] { try cases.map { try f.run($0.0).status } }
        let direct = try results()
        #expect(direct == cases.map(\.1), "without a server: \(direct)")
        let server = try f.startServer()
        let served = try results()
        #expect(served == cases.map(\.1), "through the server: \(served)")
        let json = try f.run(["status", "--json", "d99"])
        #expect(json.stdout.contains("\"code\" : \"notFound\""), "\(json.stdout)")
        #expect(server.stop() == 0)
    }

    // MARK: findings 23, 26, 36, 37: smaller things

    @Test func findings23And26And36And37() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        try cli.must(["db", "create"] + Self.images(dir, ["a", "b", "c"]))
        // 23: --config-dir naming a regular file.
        let file = try dir.image("cfgfile", size: 0)
        let cfg = try cli.run(["status", "--config-dir", file])
        #expect(cfg.status == 65, "\(cfg.stderr)")
        #expect(cfg.stderr == "metactl: \(file): not a directory (the config directory, --config-dir or METACTL_CONFIG_DIR)\n")
        // 26: a spare too small for the columns of the volume using the pool is warned about.
        let cols = try Self.images(dir, ["c0", "c1", "c2"], size: 64 << 20)
        // 36: one wording (`Said`), "set up" for pools as for volumes.
        #expect(try cli.must(["hs", "create", "hsp001"]) == "hsp001: Hotspare pool is set up\n")
        try cli.create(["d10", "raid5", "--no-init", "--hot-spare-pool", "hsp001"] + cols)
        let tiny = try dir.image("tiny.img", size: 16 << 20)
        let add = try cli.run(["hs", "add", "hsp001", tiny])
        #expect(add.ok, "\(add.stderr)")
        #expect(add.stdout == "hsp001: Hotspare is added\n")
        #expect(add.stderr.hasPrefix("metactl: warning: \(tiny): too small to stand in for a column of d10"), "\(add.stderr)")
        // 36: SVM's wording for the type that was cleared; hs enable names the device.
        let concat = try dir.image("e.img", size: 8 << 20)
        try cli.create(["d0", "concat", concat])
        #expect(try cli.must(["clear", "d0"]) == "d0: Concat/Stripe is cleared\n")
        #expect(try cli.must(["hs", "enable", tiny]) == "\(tiny): Hotspare is enabled\n")
        try cli.must(["set", "d10", "--hot-spare-pool", "none"])
        #expect(try cli.must(["clear", "d10"]) == "d10: RAID is cleared\n")
        // 37: create has grow's limits (33 columns refused, as grow refuses a 33rd).
        let many = try (0..<33).map { try dir.image("m\($0).img", size: 4 << 20) }
        let r = try cli.run(["create", "d33", "raid5", "--no-init"] + many)
        #expect(r.status == 65)
        #expect(r.stderr == "metactl: d33: 33 columns; a RAID-5 volume has at most 32\n")
        #expect(!(try cli.must(["status", "-c"])).contains("d33"))
        // 37: set names are lower case, as volume names are (`LOCAL` next to `local` was two sets).
        let upper = try cli.run(["db", "create", "-s", "LOCAL"] + Self.images(dir, ["u0", "u1", "u2"]))
        #expect(upper.status == 65, "\(upper.stderr)")
        #expect(upper.stderr == "metactl: bad set name 'LOCAL': use up to 63 lower-case letters, digits, '_', '.', '-', starting with a letter or digit\n")
        // 37: `set --hot-spare-pool` names a pool that does not exist: created empty, as
        // `create --hot-spare-pool` does, with the same note; a bad pool name is refused.
        let cols2 = try Self.images(dir, ["k0", "k1", "k2"], size: 16 << 20)
        try cli.create(["d11", "raid5", "--no-init", "--hot-spare-pool", "hsp999"] + cols2)
        let set = try cli.run(["set", "d11", "--hot-spare-pool", "hsp998"])
        #expect(set.ok, "\(set.stderr)")
        #expect(set.stderr == "metactl: hsp998: created (empty); add spares with `metactl hs add hsp998 DEV`\n")
        let p = try cli.must(["status", "-p"])
        #expect(p.contains("--hot-spare-pool hsp998") && p.contains("# metactl hs create hsp998\n"), "\(p)")
        let bad = try cli.run(["set", "d11", "--hot-spare-pool", "spares"])
        #expect(bad.status == 65 && bad.stderr == "metactl: bad hot spare pool name 'spares': use hsp000 … hsp999\n", "\(bad.stderr)")
        // 36: one wording for a device named twice, in every command that takes devices.
        let twice = try dir.image("twice.img", size: 16 << 20)
        let link = dir.file("link.img")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: twice)
        let gen36 = try Self.generation(cli)
        for args in [["create", "d36", "concat"], ["db", "add"], ["db", "create", "-s", "other"], ["hs", "add", "hsp001"], ["grow", "d11"]] {
            let same = try cli.run(args + [twice, twice])
            #expect(same.status == 65 && same.stderr == "metactl: \(twice): given twice\n", "\(args): \(same.stderr)")
            let alias = try cli.run(args + [twice, link])
            #expect(alias.status == 65 && alias.stderr == "metactl: \(link): same device as \(twice)\n", "\(args): \(alias.stderr)")
        }
        #expect(try Self.generation(cli) == gen36)
    }

    // MARK: finding 31: readiness for systemd

    /// `serve` under a `Type=notify` unit: `READY=1` reaches `$NOTIFY_SOCKET` once it serves.
    @Test(.timeLimit(.minutes(2)))
    func finding31ServeNotifiesSystemdWhenReady() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        let path = f.dir.file("notify.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0, "bind \(path)")
        var tv = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let server = try ServeProcess(metactl: f.metactl, arguments: ["serve"],
                                      environment: f.environment.merging(["NOTIFY_SOCKET": path]) { $1 },
                                      logPath: f.dir.file("notify-serve.log"))
        defer { _ = server.stop() }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        try #require(n > 0, "no notification; log:\n\(server.log)")
        let msg = String(decoding: buf[0..<n], as: UTF8.self)
        #expect(msg.hasPrefix("READY=1\nMAINPID=\(server.pid)"), "\(msg)")
        // Ready means serving: the control socket answers.
        #expect(try f.run(["status"]).ok)
        #expect(server.stop() == 0)
    }

    // MARK: findings 36 (help), 39 (JSON layout), 18 (copy from a spare)

    @Test func findings36And39HelpAndJSONLayout() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let cli = try CLI(dir)
        let bare = try cli.run([])
        #expect(bare.status == 64)
        #expect(bare.stderr.contains("USAGE: metactl <subcommand>") && bare.stderr.hasSuffix("metactl: no command given (see `metactl --help`)\n"), "\(bare.stderr)")
        let nonexist = try cli.run(["help", "nonexist"])
        #expect(nonexist.status == 64)
        #expect(nonexist.stderr == "metactl: help: no command 'nonexist' (see `metactl --help`)\n")
        let known = try cli.run(["help", "db", "delete"])
        #expect(known.ok && known.stdout.contains("USAGE: metactl db delete"), "\(known.stderr)")
        // Empty arrays are [] (they were printed over three lines).
        try cli.must(["db", "create"] + Self.images(dir, ["a", "b", "c"]))
        let db = try cli.must(["db", "status", "--json"])
        #expect(db.contains("\"problems\" : []"), "\(db)")
        let st = try cli.must(["status", "--json"])
        #expect(st.contains("\"volumes\" : []") && st.contains("\"hotSparePools\" : []"), "\(st)")
    }

    // MARK: finding 29: read-only exports

    /// `serve --read-only`: clients see read-only exports; writes are refused and the data
    /// is unchanged. A non-loopback warning says what is exposed.
    @Test(.enabled(if: Privileged.runnable(tools: ["nbdinfo", "qemu-io"])), .timeLimit(.minutes(3)))
    func finding29ReadOnlyExports() throws {
        let f = try ServeFixture()
        defer { f.cleanup() }
        try f.mustRun(["db", "create"] + f.images("r", count: 3, size: 8 << 20))
        try f.create("d0", "concat", [try f.dir.image("v.img", size: 8 << 20)])
        let server = try f.startServer(["--read-only", "--listen", "127.0.0.1:0"])
        let info = try mustRun(["nbdinfo", "--json", f.uri("d0")])
        #expect(info.contains("\"is_read_only\": true"), "\(info)")
        let write = try runCommand(["qemu-io", "-f", "raw", "-c", "write -P 0x41 0 4k", f.uri("d0")])
        #expect(!write.stdout.contains("wrote 4096/4096"), "write through a read-only export: \(write.stdout) \(write.stderr)")
        // The volume still reads zeros there.
        let read = try runCommand(["qemu-io", "-f", "raw", "-r", "-c", "read -P 0 0 4k", f.uri("d0")])
        #expect(read.ok && read.stdout.contains("read 4096/4096"), "\(read.stdout) \(read.stderr)")
        #expect(server.stop() == 0)
    }
}
