#!/usr/bin/env bash
# The GPU machine receives the working tree in at most 64 MiB, with the portable binary and
# a continuation checkpoint beside it (training/device/README.md). Fail if the tracked files
# alone exceed 60 MiB, naming the largest, so a model or dataset committed by mistake is
# caught in `make test`, not when a GPU window opens.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT_MIB=${1:-60}
total=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] && total=$(( total + $(stat -c %s "$f") ))
done < <(git ls-files -z)
limit=$(( LIMIT_MIB * 1024 * 1024 ))
mib=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$total" -gt "$limit" ]; then
  echo "tree size: the tracked files take $mib MiB, over the $LIMIT_MIB MiB the GPU job can send. Largest:" >&2
  git ls-files -z | xargs -0 stat -c '%s %n' 2>/dev/null | sort -rn | head -5 | awk '{ printf "  %8.1f MiB  %s\n", $1 / 1048576, $2 }' >&2
  echo "Move generated files out of git (.gitignore) or make them reproducible by a documented command." >&2
  exit 1
fi
echo "tree size: $mib MiB tracked (limit $LIMIT_MIB MiB)"
