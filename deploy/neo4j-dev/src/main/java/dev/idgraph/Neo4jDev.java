package dev.idgraph;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.GraphDatabaseSettings.TransactionStateMemoryAllocation;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.logging.Level;
import org.neo4j.logging.log4j.Log4jLogProvider;

/**
 * Embedded Neo4j 5 Community with a Bolt connector, for local development and CI
 * on machines that can reach Maven Central but cannot use Docker or the Neo4j tarball.
 *
 * <p>Usage: {@code Neo4jDev HOME_DIR BOLT_PORT [READY_FILE]}
 */
public final class Neo4jDev {
    private Neo4jDev() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Neo4jDev HOME_DIR BOLT_PORT [READY_FILE]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        int port = Integer.parseInt(args[1]);
        Path readyFile = args.length == 3 ? Path.of(args[2]).toAbsolutePath() : null;
        Files.createDirectories(home);

        DatabaseManagementService managementService = new DatabaseManagementServiceBuilder(home)
                // Without a user log provider, embedded mode is silent on stdout; this keeps
                // startup/shutdown messages in the log the start script captures.
                .setUserLogProvider(new Log4jLogProvider(System.out, Level.INFO))
                .setConfig(BoltConnector.enabled, true)
                // Loopback only: auth is disabled, so never expose this beyond the host.
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.auth_enabled, false)
                // The default page cache is sized from system RAM; a dev DB needs little.
                .setConfig(GraphDatabaseSettings.pagecache_memory, 256L * 1024 * 1024)
                .setConfig(GraphDatabaseSettings.tx_state_memory_allocation, TransactionStateMemoryAllocation.ON_HEAP)
                // dbms.usage_report.enabled: no anonymous usage reports from dev/CI.
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                // Netty waits a 5 s quiet period per Bolt connector (bolt + bolt-local) on
                // shutdown; drop it so stop/restart cycles in tests take ~1 s, not ~11 s.
                .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
                .build();

        // Flush stores cleanly on SIGTERM/SIGINT so the data dir can be reopened.
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j-dev: shutting down");
            try {
                managementService.shutdown();
                System.out.println("neo4j-dev: stopped");
            } finally {
                if (readyFile != null) {
                    try {
                        Files.deleteIfExists(readyFile);
                    } catch (Exception ignored) {
                        // best effort
                    }
                }
                stopped.countDown();
            }
        }, "neo4j-dev-shutdown"));

        GraphDatabaseService db = managementService.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        while (!db.isAvailable(1_000)) {
            System.out.println("neo4j-dev: waiting for database " + db.databaseName());
        }
        if (readyFile != null) {
            Files.writeString(readyFile, ProcessHandle.current().pid() + "\n", StandardCharsets.UTF_8);
        }
        System.out.println("neo4j-dev: bolt ready on 127.0.0.1:" + port);
        System.out.flush();

        stopped.await();
    }
}
