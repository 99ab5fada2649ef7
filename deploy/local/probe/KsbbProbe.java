import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Readiness probe used by `deploy/local/infra up` when the repo's Python environment
 * (aiokafka + pymongo) is not available. Same checks as probe.py:
 *
 * <pre>
 *   KsbbProbe kafka 127.0.0.1:19092 TIMEOUT_SECONDS
 *   KsbbProbe mongo 127.0.0.1 27018 TIMEOUT_SECONDS
 * </pre>
 *
 * kafka: explicit admin create of __ksbb_probe, idempotent acks=all produce, read back, commit.
 * mongo: hand-written OP_MSG {isMaster: 1} / {ping: 1}; requires ok == 1 and maxWireVersion >= 9
 * (what PyMongo 4.18+ requires).
 */
public final class KsbbProbe {
    static final String PROBE_TOPIC = "__ksbb_probe";
    static final int MIN_WIRE_VERSION = 9;

    private KsbbProbe() {
    }

    public static void main(String[] args) {
        try {
            switch (args.length > 0 ? args[0] : "") {
                case "kafka" -> kafka(args[1], Integer.parseInt(args[2]));
                case "mongo" -> mongo(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3]));
                default -> {
                    System.err.println("usage: KsbbProbe kafka BOOTSTRAP TIMEOUT | mongo HOST PORT TIMEOUT");
                    System.exit(2);
                }
            }
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.err.println(args[0] + " not ready: " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
            System.exit(1);
        }
        System.exit(0);
    }

    static void kafka(String bootstrap, int timeoutSeconds) throws Exception {
        int timeoutMs = timeoutSeconds * 1000;
        Properties common = new Properties();
        common.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        common.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, timeoutMs);
        common.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, timeoutMs);

        try (Admin admin = Admin.create(common)) {
            try {
                admin.createTopics(List.of(new NewTopic(PROBE_TOPIC, 1, (short) 1)))
                        .all().get(timeoutSeconds, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
        }

        byte[] payload = UUID.randomUUID().toString().getBytes(StandardCharsets.UTF_8);
        Properties pp = new Properties();
        pp.putAll(common);
        pp.remove(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, timeoutMs + 1000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, timeoutMs);
        RecordMetadata meta;
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            meta = producer.send(new ProducerRecord<>(PROBE_TOPIC, 0, null, payload))
                    .get(timeoutSeconds, TimeUnit.SECONDS);
        }

        Properties cp = new Properties();
        cp.putAll(common);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, PROBE_TOPIC);
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        TopicPartition tp = new TopicPartition(PROBE_TOPIC, meta.partition());
        try (KafkaConsumer<byte[], byte[]> consumer =
                     new KafkaConsumer<>(cp, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, meta.offset());
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    if (record.offset() == meta.offset()) {
                        if (!Arrays.equals(record.value(), payload)) {
                            throw new IllegalStateException("read back a different payload");
                        }
                        consumer.commitSync(Map.of(tp, new OffsetAndMetadata(record.offset() + 1)),
                                Duration.ofSeconds(timeoutSeconds));
                        return;
                    }
                }
            }
            throw new IllegalStateException("produced record not read back within " + timeoutSeconds + "s");
        }
    }

    // ---------------------------------------------------------------- MongoDB wire (no driver)

    static void mongo(String host, int port, int timeoutSeconds) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(host, port), timeoutSeconds * 1000);
            socket.setSoTimeout(timeoutSeconds * 1000);
            OutputStream out = socket.getOutputStream();
            DataInputStream in = new DataInputStream(socket.getInputStream());

            Map<String, Object> hello = command(out, in, 1, "isMaster"); // mongo-java-server has no `hello`
            Object wire = hello.get("maxWireVersion");
            if (!(wire instanceof Number) || ((Number) wire).intValue() < MIN_WIRE_VERSION) {
                throw new IllegalStateException("maxWireVersion " + wire + " < " + MIN_WIRE_VERSION);
            }
            command(out, in, 2, "ping");
        }
    }

    /** Sends OP_MSG {name: 1, $db: "admin"} and returns the top-level scalar fields of the reply. */
    static Map<String, Object> command(OutputStream out, DataInputStream in, int requestId, String name)
            throws IOException {
        byte[] doc = bsonDocument(name);
        ByteBuffer msg = ByteBuffer.allocate(16 + 4 + 1 + doc.length).order(ByteOrder.LITTLE_ENDIAN);
        msg.putInt(16 + 4 + 1 + doc.length).putInt(requestId).putInt(0).putInt(2013); // OP_MSG
        msg.putInt(0).put((byte) 0).put(doc);
        out.write(msg.array());
        out.flush();

        byte[] header = in.readNBytes(16);
        if (header.length < 16) {
            throw new IOException("connection closed");
        }
        ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
        int length = h.getInt();
        byte[] body = in.readNBytes(length - 16);
        ByteBuffer b = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
        if (h.getInt(12) != 2013) {
            throw new IOException("unexpected opcode " + h.getInt(12));
        }
        b.getInt(); // flagBits
        if (b.get() != 0) {
            throw new IOException("unexpected OP_MSG section kind");
        }
        Map<String, Object> reply = readTopLevel(b);
        Object ok = reply.get("ok");
        if (!(ok instanceof Number) || ((Number) ok).doubleValue() != 1.0) {
            throw new IllegalStateException(name + " answered " + reply);
        }
        return reply;
    }

    static byte[] bsonDocument(String commandName) {
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        e.write(0x10); // int32
        writeCString(e, commandName);
        writeInt(e, 1);
        e.write(0x02); // string
        writeCString(e, "$db");
        byte[] db = "admin".getBytes(StandardCharsets.UTF_8);
        writeInt(e, db.length + 1);
        e.writeBytes(db);
        e.write(0);
        byte[] elements = e.toByteArray();
        ByteArrayOutputStream d = new ByteArrayOutputStream();
        writeInt(d, 4 + elements.length + 1);
        d.writeBytes(elements);
        d.write(0);
        return d.toByteArray();
    }

    /** Reads numbers/bools/strings at the top level of a BSON document; skips nested values. */
    static Map<String, Object> readTopLevel(ByteBuffer b) {
        Map<String, Object> out = new java.util.LinkedHashMap<>();
        int start = b.position();
        int end = start + b.getInt();
        while (b.position() < end - 1) {
            byte type = b.get();
            String key = readCString(b);
            switch (type) {
                case 0x01 -> out.put(key, b.getDouble());
                case 0x02 -> {
                    int n = b.getInt();
                    byte[] s = new byte[n];
                    b.get(s);
                    out.put(key, new String(s, 0, n - 1, StandardCharsets.UTF_8));
                }
                case 0x03, 0x04 -> b.position(b.position() + b.getInt(b.position()));
                case 0x07 -> b.position(b.position() + 12);
                case 0x08 -> out.put(key, b.get() != 0);
                case 0x09, 0x11, 0x12 -> out.put(key, b.getLong());
                case 0x0A -> out.put(key, null);
                case 0x10 -> out.put(key, b.getInt());
                default -> {
                    return out; // unknown type: stop, we have what we need up to here
                }
            }
        }
        return out;
    }

    static String readCString(ByteBuffer b) {
        int from = b.position();
        while (b.get() != 0) {
            // scan to NUL
        }
        return new String(b.array(), from, b.position() - from - 1, StandardCharsets.UTF_8);
    }

    static void writeCString(ByteArrayOutputStream o, String s) {
        o.writeBytes(s.getBytes(StandardCharsets.UTF_8));
        o.write(0);
    }

    static void writeInt(ByteArrayOutputStream o, int v) {
        o.write(v);
        o.write(v >>> 8);
        o.write(v >>> 16);
        o.write(v >>> 24);
    }
}
