"""A 2-node local Ray cluster in its own process, for tests whose driver and clients are other processes.

Started with token authentication when ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` are set. Prints
the cluster's address on one line, then runs until its standard input closes, and shuts the cluster
down (only its own nodes).
"""

import sys

from ray.cluster_utils import Cluster


def main() -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        print(cluster.address, flush=True)
        sys.stdin.read()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
