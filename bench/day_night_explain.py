"""Where a day/night demo's errors come from (issue 19), over all its runs.

For each run of `bench/day_night_demo.sh` (OUT/run-SEED-ARM.jsonl against
OUT/new-SEED/ground_truth.jsonl), `vireid score --explain --json` lists the
decisions that filed a sighting under someone else's identity and where the
night thermal sightings of each unlinked person went. This counts them:

    python3 bench/day_night_explain.py OUT [ARM=with-light] [RUNS]      (VIREID= the binary)

RUNS counts only the runs of seeds 9101…9100+RUNS (the bench's own), not
older ones left in OUT.
"""
import collections
import glob
import json
import os
import subprocess
import sys

out, arm = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "with-light"
last_seed = 9100 + int(sys.argv[3]) if len(sys.argv) > 3 else None
vireid = os.environ.get("VIREID", "target/release/vireid")
wrong, missed, runs = collections.Counter(), collections.Counter(), 0
for run in sorted(glob.glob(f"{out}/run-*-{arm}.jsonl")):
    seed = os.path.basename(run).split("-")[1]
    if last_seed is not None and int(seed) > last_seed:
        continue
    gt = f"{out}/new-{seed}/ground_truth.jsonl"
    if not os.path.exists(gt):
        continue
    cmd = [vireid, "--log", "warn", "score", "--gt", gt, "--sightings", run, "--explain", "--json"]
    why = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)["explain"]
    runs += 1
    for w in why["wrong_joins"]:
        j = w["joined_by"]
        partner = j.get("partner_person")
        how = ("appearance" if j["by"] == "appearance"
               else "co-observation with an unattributed partner" if partner is None
               else "co-observation, following its partner's wrong join" if partner == w["person"]
               else "co-observation with another person (pairing)")
        wrong[f"{w['modality']} by {w['segment']}, by {how}"] += 1
    for m in why["missed_links"]:
        fates = set()
        for n in m["night_thermal"]:
            if n["new_identity"]:
                fates.add("matched nobody")
            elif n["identity_person"] != m["person"]:
                fates.add("joined someone else")
            elif n["joined_by"]["by"] == "co_observation":
                fates.add("followed its colour partner")
            else:
                fates.add("joined another identity of theirs")
        missed[" + ".join(sorted(fates))] += 1
if not runs:
    sys.exit(f"no runs of arm '{arm}' with a ground truth under {out}: run bench/day_night_demo.sh first")
print(f"\nWhere the errors come from ({runs} runs, arm {arm}):\n")
print("| wrong join (a sighting filed under someone else's identity) | count |\n| --- | ---: |")
for k, v in wrong.most_common():
    print(f"| {k} | {v} |")
print("\n| missed night→day link: the person's night thermal sightings | people |\n| --- | ---: |")
for k, v in missed.most_common():
    print(f"| {k} | {v} |")
