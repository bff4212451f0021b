"""Counting named checks in the Python test scripts, and their closing line."""


class Checks:
    def __init__(self, verbose=False):
        self.passed = 0
        self.failed = []
        self.verbose = verbose

    def __call__(self, ok, what):
        """Records one check; prints failures always and passes when verbose."""
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
        if not ok or self.verbose:
            print(f"{'PASS' if ok else 'FAIL'} {what}")
        return ok

    def finish(self):
        """Prints 'N passed, M failed' and returns the exit status."""
        print(f"{self.passed} passed, {len(self.failed)} failed")
        return 1 if self.failed else 0
