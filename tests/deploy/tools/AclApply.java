// Applies Kafka ACLs the way Strimzi's User Operator applies a KafkaUser's `authorization.acls`, so the deploy
// tests can run the services against a broker that enforces the rendered users (tests/deploy/conftest.py).
// Usage: java -cp <kafka lib>/* AclApply <bootstrap> <file>; each line of the file is
//   principal|resourceType|resourceName|patternType|operation     (resourceType TOPIC, GROUP or CLUSTER)
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public final class AclApply {
    private AclApply() {
    }

    public static void main(String[] args) throws Exception {
        List<AclBinding> bindings = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.split("\\|");
            ResourcePattern pattern = new ResourcePattern(
                ResourceType.fromString(f[1]), f[2], PatternType.fromString(f[3]));
            AccessControlEntry entry = new AccessControlEntry(
                f[0], "*", AclOperation.fromString(f[4]), AclPermissionType.ALLOW);
            bindings.add(new AclBinding(pattern, entry));
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
        }
        System.out.println("applied " + bindings.size() + " ACLs");
    }
}
