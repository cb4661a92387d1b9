"""Replay tokens: urlsafe base64 of zlib-compressed JSON, choices run-length encoded."""
import base64
import json
import sys
import zlib

PREFIX = "x1."


def _rle(seq):
    out = []
    for v in seq:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return ".".join(f"{v}*{n}" if n > 1 else str(v) for v, n in out)


def _unrle(text):
    seq = []
    for part in filter(None, text.split(".")):
        v, _, n = part.partition("*")
        seq.extend([int(v)] * (int(n) if n else 1))
    return seq


def encode(strategy, seed, index, granularity, workers, choices):
    data = {"s": strategy, "seed": seed, "i": index,
            "py": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "g": granularity, "w": workers, "c": _rle(choices)}
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 9)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token):
    """Token -> dict(strategy, seed, index, python, granularity, workers, choices)."""
    if not isinstance(token, str) or not token.startswith(PREFIX):
        raise ValueError(f"not an explore replay token: {token!r}")
    body = token[len(PREFIX):].strip()
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        data = json.loads(raw)
        return {"strategy": data["s"], "seed": data["seed"], "index": data["i"],
                "python": data["py"], "granularity": data["g"], "workers": data["w"],
                "choices": _unrle(data["c"])}
    except (ValueError, KeyError, zlib.error) as exc:
        raise ValueError(f"corrupt explore replay token ({exc})") from None
