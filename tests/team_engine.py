"""One engine of a team: runs a goal file on a store (trials in this process) with a
quick sync and heartbeat, and prints how it ended as JSON.

    python team_engine.py STORE_URL GOAL_FILE [REAP_AFTER_SECONDS]
"""

import json
import sys

import pursuit
from pursuit.loop import Policy


def main() -> None:
    url, goal_file = sys.argv[1], sys.argv[2]
    reap_after = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    policy = Policy(sync_every=0.2, heartbeat_every=0.5, reap_after=reap_after)
    [summary, *_] = pursuit.run(pursuit.load_goal(goal_file), url, "inline", policy=policy)
    print(json.dumps({"reached": summary.reached, "stop": summary.stop.value,
                      "reason": summary.reason, "trials": summary.trials}))


if __name__ == "__main__":
    main()
