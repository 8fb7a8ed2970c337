#!/bin/sh
# The job scripts users submit (jobs/) are clean under Debian's shellcheck at
# every severity; the project's other shell scripts (tests, benchmarks,
# dataset recipes, CI) at warning level and above, since the tests split
# flag lists into words on purpose.
command -v shellcheck >/dev/null 2>&1 ||
    { echo "shellcheck is missing (apt-get install shellcheck)"; exit 1; }
status=0
if shellcheck jobs/*.slurm jobs/*.sh; then
    echo "ok: jobs/ clean"
else
    echo "FAILED: jobs/ has shellcheck findings"
    status=1
fi
# shellcheck disable=SC2046 # one word per file: the paths hold no spaces
if shellcheck -S warning .ci/run $(find tests bench datasets tools -name '*.sh' | sort); then
    echo "ok: the other scripts are clean at warning level"
else
    echo "FAILED: the other scripts have shellcheck warnings"
    status=1
fi
exit $status
