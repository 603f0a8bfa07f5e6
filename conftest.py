"""pytest from the repository root: the doctests of optional modules run only where their extra is installed.

``tests/`` skips the tests of a missing extra itself (``pytest.importorskip``).
"""

collect_ignore_glob = []
try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import skl2onnx  # noqa: F401
except ImportError:  # the onnx extra: sknet.export
    collect_ignore_glob.append("sknet/export/*")
