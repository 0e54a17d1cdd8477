// Drives the ZooKeeper Java API through the calls zkCli and kazoo never make (create2 with
// a Stat, createTTL/createContainer inside multi, multiRead, checkWatches, ...), so that
// capture.py can record their frames. Run as a single-file program:
//
//     java -cp /usr/share/java/zookeeper.jar JavaOps.java 127.0.0.1:<port>
//
// Any failure exits non-zero; every call is bounded by the session's timeouts.

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class JavaOps {
    static final long WAIT_SECONDS = 30;

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void await(CountDownLatch latch, String what) throws InterruptedException {
        if (!latch.await(WAIT_SECONDS, TimeUnit.SECONDS)) {
            throw new IllegalStateException("waited " + WAIT_SECONDS + "s for " + what);
        }
    }

    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 10000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        await(connected, "the session");
        String root = "/java";
        Stat stat = new Stat();

        // create2 (the overloads that return a Stat), createTTL, createContainer.
        zk.create(root, bytes("root"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, stat);
        zk.create(root + "/empty", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, stat);
        zk.create(root + "/ttl", bytes("t"), ZooDefs.Ids.OPEN_ACL_UNSAFE,
                CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, stat, 600000);
        zk.create(root + "/cont", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER, stat);
        zk.getData(root + "/empty", false, stat);

        // multi with every write kind; TTL and container creates answer as create2 (15).
        List<OpResult> results = zk.multi(Arrays.asList(
                Op.create(root + "/m1", bytes("1"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create(root + "/m2", bytes("2"), ZooDefs.Ids.OPEN_ACL_UNSAFE,
                        CreateMode.PERSISTENT_WITH_TTL, 600000),
                Op.create(root + "/cont/m3", bytes("3"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.create(root + "/m4", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
                Op.setData(root + "/m1", bytes("1b"), 0),
                Op.check(root + "/m1", 1),
                Op.delete(root + "/m1", 1)));
        if (results.size() != 7) {
            throw new IllegalStateException("multi returned " + results);
        }
        // A failing multi: the check fails, every result becomes an error.
        try {
            zk.multi(Arrays.asList(
                    Op.create(root + "/never", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                    Op.check(root, 99),
                    Op.delete(root + "/m2", -1)));
            throw new IllegalStateException("the failing multi succeeded");
        } catch (KeeperException.BadVersionException expected) {
            // the reply still carries one error result per op
        }

        // multiRead: getData and getChildren, one of them failing.
        zk.multi(Arrays.asList(
                Op.getData(root),
                Op.getChildren(root),
                Op.getData(root + "/missing")));

        // checkWatches: removing one specific watcher (removeAllWatches would be removeWatches).
        Watcher ignore = event -> { };
        zk.getData(root, ignore, stat);
        zk.removeWatches(root, ignore, Watcher.WatcherType.Data, false);
        try {
            zk.removeWatches(root, ignore, Watcher.WatcherType.Data, false);
            throw new IllegalStateException("removing a removed watcher succeeded");
        } catch (KeeperException.NoWatcherException expected) {
            // NOWATCHER
        }

        zk.getEphemerals("/");
        zk.getAllChildrenNumber(root);
        zk.whoAmI();
        zk.sync(root, (rc, path, ctx) -> { }, null);

        // A persistent recursive watch firing for a descendant.
        CountDownLatch fired = new CountDownLatch(1);
        zk.addWatch(root, event -> {
            if (event.getType() == Watcher.Event.EventType.NodeCreated) {
                fired.countDown();
            }
        }, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.create(root + "/cont/watched", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        await(fired, "a NodeCreated event from the recursive watch");

        zk.close();
    }
}
