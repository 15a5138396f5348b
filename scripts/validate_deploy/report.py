"""The check runner: every check is printed with its output, then ok / FAILED / SKIPPED, and a
summary at the end, as scripts/validate-deploy always has."""
import contextlib
import io
import subprocess
import sys
import traceback

_errors = [[]]  # a stack: collect() pushes a fresh list


def err(where, msg):
    """Records a finding of the check that is running."""
    _errors[-1].append(f"{where}: {msg}")


@contextlib.contextmanager
def collect():
    """Findings recorded inside the block go to the list it yields, not to the running check."""
    _errors.append([])
    try:
        yield _errors[-1]
    finally:
        _errors.pop()


class CheckFailed(Exception):
    """Raised by a check to fail with a message (a tool's exit status, for instance)."""


def run(cmd, **kw):
    """Runs a command, prints its combined output; CheckFailed when it exits non-zero."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.stdout.strip():
        print(p.stdout.rstrip("\n"))
    if p.returncode != 0:
        raise CheckFailed(f"exit {p.returncode}")
    return p.stdout


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.skipped = []

    def check(self, name, fn, *args, **kwargs):
        """Runs fn(*args, **kwargs), printing its output indented. It fails when fn records an error,
        raises, or returns False. Returns fn's result (None when it failed with an exception)."""
        print(f"\n==> {name}", flush=True)
        out = io.StringIO()
        result, problem = None, None
        with collect() as errors, contextlib.redirect_stdout(out):
            try:
                result = fn(*args, **kwargs)
            except CheckFailed as e:
                problem = str(e)
            except Exception:  # a bug or an unexpected file shape: show it, fail the check
                problem = "exception:\n" + traceback.format_exc()
        text = out.getvalue().rstrip("\n")
        for e in dict.fromkeys(errors):
            text += ("\n" if text else "") + "ERROR " + e
        if problem and "\n" in problem:  # a traceback; a one-line problem goes on the FAILED line
            text += ("\n" if text else "") + problem
        if text:
            print("\n".join("    " + line if line else "    " for line in text.split("\n")))
        if problem or errors or result is False:
            print(f"    FAILED ({'exit 1' if not problem else 'exception' if problem.startswith('exception') else problem})")
            self.failed.append(name)
            return None
        print("    ok")
        self.passed += 1
        return result

    def skip(self, name, why):
        print(f"\n==> {name}\n    SKIPPED: {why}")
        self.skipped.append(name)

    def summary(self):
        print(f"\nvalidate-deploy: {self.passed} passed, {len(self.failed)} failed, "
              f"{len(self.skipped)} skipped")
        for f in self.failed:
            print(f"  failed: {f}")
        for s in self.skipped:
            print(f"  skipped: {s}")
        sys.stdout.flush()
        return 1 if self.failed else 0
