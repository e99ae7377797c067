#!/usr/bin/env bash
# The long full-disk campaign (issue 11 item 4): seeded fills of a 1 MiB tmpfs under a child that
# logs, writes metrics, TensorBoard scalars and checkpoints until the disk is full. Needs root
# (mount). CI runs 4 fills as part of the unit tests; this runs $1 (default 14).
set -euo pipefail
cd "$(dirname "$0")/.."
DANLING_FULL_DISK_FILLS="${1:-14}" npx vitest run test/effects/logging/fullDiskCampaign.test.ts
