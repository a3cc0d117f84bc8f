"""TAP-style output for python tests: run unittest cases, print "ok - ..."/"not ok - ...".

usage at the bottom of a test file:   if __name__ == "__main__": tap.main()
"""
import sys
import unittest


class _Result(unittest.TextTestResult):
    def addSuccess(self, test):
        super().addSuccess(test)
        print("ok - %s" % _name(test), flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print("not ok - %s: %s" % (_name(test), _first(self, test, err)), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print("not ok - %s: %s" % (_name(test), _first(self, test, err)), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        print("# skip %s: %s" % (_name(test), reason), flush=True)


def _name(test):
    if not hasattr(test, "_testMethodName"):  # setUpClass/module errors
        return str(test)
    doc = test.shortDescription()
    return "%s.%s%s" % (type(test).__name__, test._testMethodName, (" (" + doc + ")") if doc else "")


def _first(result, test, err):
    text = result._exc_info_to_string(err, test)
    sys.stderr.write(text)
    return text.strip().splitlines()[-1]


def main(module="__main__"):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    runner = unittest.TextTestRunner(stream=sys.stderr, resultclass=_Result, verbosity=0)
    result = runner.run(suite)
    sys.exit(0 if result.wasSuccessful() else 1)
