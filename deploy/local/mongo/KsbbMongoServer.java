import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;

import java.io.File;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Local/CI MongoDB-wire server for the KSBB platform (started by deploy/local/infra).
 *
 * <p>Wraps de.bwaldvogel:mongo-java-server. The only behaviour we add is the announced server
 * version: mongo-java-server 1.47.0 announces at most MongoDB 5.0 with maxWireVersion 8, and
 * PyMongo 4.18+ refuses servers whose maxWireVersion is below 9 (MongoDB 4.4). We announce
 * 4.4.0 / wire 9 through {@link de.bwaldvogel.mongo.backend.AbstractMongoBackend#version}.
 * This does not add any 4.4 features; see deploy/local/README.md for what is unsupported.
 *
 * <p>Usage: {@code KsbbMongoServer --host 127.0.0.1 --port 27018 --backend memory|h2 [--h2-file PATH]}
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

    private KsbbMongoServer() {
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 27018;
        String backendName = "memory";
        String h2File = null;
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
                backend = new H2Backend(h2File);
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
                host, port, backendName, h2File == null ? "" : " file=" + h2File,
                MONGO_4_4.toVersionString(), MONGO_4_4.getWireVersion());
        stopped.await();
    }

    private static void usage(String message) {
        System.err.println("KsbbMongoServer: " + message);
        System.err.println("usage: KsbbMongoServer --host HOST --port PORT --backend memory|h2 [--h2-file PATH]");
        System.exit(2);
    }
}
