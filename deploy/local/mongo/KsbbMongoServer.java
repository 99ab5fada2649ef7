import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.wire.message.MongoMessage;
import io.netty.channel.Channel;
import org.h2.mvstore.MVStore;

import java.io.File;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Supplier;

/**
 * Local/CI MongoDB-wire server for the KSBB platform (started by deploy/local/infra).
 *
 * <p>Wraps de.bwaldvogel:mongo-java-server. The only behaviour we add is the announced server
 * version: mongo-java-server 1.47.0 announces at most MongoDB 5.0 with maxWireVersion 8, and
 * PyMongo 4.18+ refuses servers whose maxWireVersion is below 9 (MongoDB 4.4). We announce
 * 4.4.0 / wire 9 through {@link de.bwaldvogel.mongo.backend.AbstractMongoBackend#version}.
 * This does not add any 4.4 features; see deploy/local/README.md for what is unsupported.
 *
 * <p>The h2 backend (on disk, for {@code make run}) commits its MVStore after every write command, so a
 * {@code kill -9} of this process loses no acknowledged write. {@code --h2-commit delay} commits about once
 * a second instead (a kill loses the last second of acknowledged writes, as a MongoDB without journal
 * would). Either way a commit holds only whole writes, so the file a restart opens is consistent: every
 * index agrees with its documents. The memory backend (tests) is unchanged.
 *
 * <p>Usage: {@code KsbbMongoServer --host 127.0.0.1 --port 27018 --backend memory|h2 [--h2-file PATH]
 * [--h2-commit per-write|delay]}
 */
public final class KsbbMongoServer {

    /** What the backend reports in hello/isMaster/buildInfo. */
    static final class AnnouncedVersion implements MongoVersion {
        private final List<Integer> versionArray;
        private final int wireVersion;

        AnnouncedVersion(List<Integer> versionArray, int wireVersion) {
            this.versionArray = versionArray;
            this.wireVersion = wireVersion;
        }

        @Override
        public List<Integer> getVersionArray() {
            return versionArray;
        }

        @Override
        public int getWireVersion() {
            return wireVersion;
        }
    }

    static final MongoVersion MONGO_4_4 = new AnnouncedVersion(List.of(4, 4, 0), 9);

    /** Commands that change data: after each of them the committing backend writes its MVStore. */
    static final Set<String> WRITE_COMMANDS = Set.of("insert", "update", "delete", "findandmodify", "create",
            "createindexes", "dropindexes", "drop", "dropdatabase", "renamecollection");

    /**
     * An H2 backend whose file only ever holds whole write commands, committed after every one of them
     * ({@code per-write}: the reply waits for the commit) or about once a second ({@code delay}).
     *
     * <p>One write changes several MVStore maps (the documents and each index). H2's own auto-commit
     * writes whatever is in memory at that moment, so a {@code kill -9} could leave a document and its
     * index entries from different writes: an update addressed through a unique index then never finds a
     * document that a plain read still shows. Like a MongoDB checkpoint, a commit here waits for the
     * write commands in flight and holds off new ones until it is done; H2's auto-commit is off.
     */
    static final class CheckpointingH2Backend extends H2Backend {
        private final ReentrantReadWriteLock checkpoint = new ReentrantReadWriteLock(true);
        private final boolean perWrite;

        CheckpointingH2Backend(String fileName, boolean perWrite) {
            super(new MVStore.Builder().fileName(fileName).autoCommitDisabled().open());
            this.perWrite = perWrite;
            if (!perWrite) {
                Thread committer = new Thread(() -> {
                    while (!Thread.currentThread().isInterrupted()) {
                        try {
                            Thread.sleep(1000);
                        } catch (InterruptedException e) {
                            return;
                        }
                        commitWholeWrites();
                    }
                }, "ksbb-mongo-checkpoint");
                committer.setDaemon(true);
                committer.start();
            }
        }

        private void commitWholeWrites() {
            checkpoint.writeLock().lock();
            try {
                if (!getMvStore().isClosed()) {
                    commit();
                }
            } finally {
                checkpoint.writeLock().unlock();
            }
        }

        private Document write(String command, Supplier<Document> handler) {
            if (command == null || !WRITE_COMMANDS.contains(command.toLowerCase(Locale.ROOT))) {
                return handler.get();
            }
            checkpoint.readLock().lock();
            try {
                return handler.get();
            } finally {
                checkpoint.readLock().unlock();
                // Reentrant: an OP_MSG write reaches handleCommand too; commit once, at the outer level.
                if (perWrite && checkpoint.getReadHoldCount() == 0) {
                    commitWholeWrites();
                }
            }
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            return write(command, () -> super.handleCommand(channel, databaseName, command, query));
        }

        @Override
        public Document handleMessage(MongoMessage message) {
            String command = message.getDocument().keySet().stream().findFirst().orElse("");
            return write(command, () -> super.handleMessage(message));
        }
    }

    private KsbbMongoServer() {
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 27018;
        String backendName = "memory";
        String h2File = null;
        String h2Commit = "per-write";
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (i + 1 >= args.length && arg.startsWith("--")) {
                usage("missing value for " + arg);
            }
            switch (arg) {
                case "--host" -> host = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--backend" -> backendName = args[++i];
                case "--h2-file" -> h2File = args[++i];
                case "--h2-commit" -> h2Commit = args[++i];
                default -> usage("unknown argument: " + arg);
            }
        }

        final MongoBackend backend;
        switch (backendName) {
            case "memory" -> backend = new MemoryBackend();
            case "h2" -> {
                if (h2File == null) {
                    usage("--backend h2 needs --h2-file");
                }
                File parent = new File(h2File).getAbsoluteFile().getParentFile();
                if (parent != null && !parent.isDirectory() && !parent.mkdirs()) {
                    throw new IllegalStateException("cannot create " + parent);
                }
                backend = switch (h2Commit) {
                    case "per-write" -> new CheckpointingH2Backend(h2File, true);
                    case "delay" -> new CheckpointingH2Backend(h2File, false);
                    default -> {
                        usage("unknown --h2-commit '" + h2Commit + "' (expected per-write or delay)");
                        yield null;
                    }
                };
            }
            default -> {
                usage("unknown backend '" + backendName + "' (expected memory or h2)");
                return;
            }
        }
        backend.version(MONGO_4_4);

        MongoServer server = new MongoServer(backend);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("KsbbMongoServer: shutting down");
            try {
                // shutdownNow() closes client channels and the backend (H2: commits and closes the file).
                server.shutdownNow();
            } catch (RuntimeException e) {
                System.err.println("KsbbMongoServer: error during shutdown: " + e);
            } finally {
                stopped.countDown();
            }
        }, "ksbb-mongo-shutdown"));

        server.bind(host, port);
        System.err.printf("KsbbMongoServer: listening on %s:%d backend=%s%s announcing MongoDB %s (maxWireVersion %d)%n",
                host, port, backendName, h2File == null ? "" : " file=" + h2File + " commit=" + h2Commit,
                MONGO_4_4.toVersionString(), MONGO_4_4.getWireVersion());
        stopped.await();
    }

    private static void usage(String message) {
        System.err.println("KsbbMongoServer: " + message);
        System.err.println("usage: KsbbMongoServer --host HOST --port PORT --backend memory|h2 [--h2-file PATH]"
                + " [--h2-commit per-write|delay]");
        System.exit(2);
    }
}
