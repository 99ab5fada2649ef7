package id.ksbb.interop;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.cloudevents.CloudEvent;
import io.cloudevents.kafka.CloudEventDeserializer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Reads a topic from the beginning with the CloudEvents SDK's Kafka deserializer (its own mode detection)
 * and prints one JSON line per event: the attributes it read and the data. Exit 1 on any record it cannot read.
 *
 * <p>Usage: ReadTopic BOOTSTRAP TOPIC EXPECTED_COUNT TIMEOUT_SECONDS
 */
public final class ReadTopic {

  private ReadTopic() {}

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    int expected = Integer.parseInt(args[2]);
    Instant deadline = Instant.now().plusSeconds(Long.parseLong(args[3]));

    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, CloudEventDeserializer.class.getName());
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");

    ObjectMapper json = new ObjectMapper();
    int seen = 0;
    try (KafkaConsumer<String, CloudEvent> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (PartitionInfo info : consumer.partitionsFor(topic)) {
        partitions.add(new TopicPartition(topic, info.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      while (seen < expected && Instant.now().isBefore(deadline)) {
        for (ConsumerRecord<String, CloudEvent> record : consumer.poll(Duration.ofMillis(500))) {
          CloudEvent event = record.value();
          ObjectNode line = json.createObjectNode();
          line.put("key", record.key());
          line.put("specversion", event.getSpecVersion().toString());
          line.put("id", event.getId());
          line.put("type", event.getType());
          line.put("source", event.getSource().toString());
          line.put("subject", event.getSubject());
          line.put("time", event.getTime() == null ? null : event.getTime().toInstant().toString());
          line.put("datacontenttype", event.getDataContentType());
          line.set("data", json.readTree(new String(event.getData().toBytes(), StandardCharsets.UTF_8)));
          System.out.println(json.writeValueAsString(line));
          seen++;
        }
      }
    }
    if (seen < expected) {
      System.err.println("read " + seen + " of " + expected + " events from " + topic);
      System.exit(2);
    }
  }
}
