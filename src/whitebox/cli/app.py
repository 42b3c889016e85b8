"""A local web page for cartoonizing photos (see --help)."""
import argparse
import sys

DESCRIPTION = """\
Serve a web page for cartoonizing photos: drop photos (or click a sample), see each beside
its cartoon, download the PNG: the bytes of `cartoonize.py --format png` with the same options.
Weights are found as cartoonize.py finds them; when they are missing, the page shows the
instructions and the server keeps running. Needs requirements-web.txt. See docs/DEPLOYMENT.md.
"""

EPILOG = """\
The page listens on --host only (by default this computer only); nothing is shared or sent
elsewhere. Stop it with Ctrl-C (exit 130); a port in use is exit 2.

example: python app.py                 then open http://127.0.0.1:7860
"""


def parse_args(argv=None):
    from whitebox.cli import OneLineParser
    from whitebox.cli.inference_options import add_inference_flags

    p = OneLineParser(prog="app.py", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_inference_flags(p, ["weights"])
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this computer only; "
                        "0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    add_inference_flags(p, ["offline"])
    args = p.parse_args(argv)
    if not 1 <= args.port <= 65535:
        p.error("--port must be between 1 and 65535")
    return args


def _run(args):
    """Serve until Ctrl-C; a page that cannot start raises UsageError (exit 2)."""
    from whitebox.base.errors import UsageError, one_line
    from whitebox.cli import say

    try:
        from whitebox.serve import web
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("gradio"):
            raise
        raise UsageError("the web page needs Gradio: pip install -r requirements-web.txt") \
            from None
    try:
        web.serve(args.weights, args.host, args.port, args.offline, say)
    except OSError as err:
        raise UsageError(one_line(err, "all")) from None
    return 0


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(parse_args(argv)), "app.py")


if __name__ == "__main__":
    sys.exit(main())
