#!/usr/bin/env python3
"""Oracle for tests/http_util_vs_python.rs: Python's standard library on the
same inputs as unisock::http_util.

Reads JSON lines on stdin, one request each, and writes one JSON line per
request on stdout, in order. Every answer is what the standard library says;
the Rust test decides which differences are the known, documented ones.

Requests ({"op": ..., ...}) and answers:
  encode        {"s": str}            -> {"r": quote(s, safe='')}
  encode_bytes  {"hex": str}          -> {"r": quote(bytes, safe='')}
  decode        {"s": str}            -> {"r": unquote_plus(s, errors='strict')}
                                         or {"err": "utf8" | message};
                                         always "bad_escape": bool (a '%' not
                                         followed by two hex digits) and
                                         "bytes_hex": unquote_to_bytes of s
                                         with '+' as space, in hex
  parse_headers {"s": str}            -> {"email": [[name, value], ...],
                                          "client": [[name, value], ...]}
                                         (email.parser.HeaderParser and
                                         http.client.parse_headers, raw items)
  format_headers {"pairs": [[n, v]]}  -> {"r": str} (http.client putheader
                                         lines, CRLF-terminated) or {"err": msg}
  http_date     {"t": int}            -> {"r": formatdate(t, usegmt=True)}
                                         or {"err": msg}
  parse_date    {"s": str, "now": int}-> {"py": int | None} from
                                         parsedate_to_datetime (asctime taken
                                         as UTC), and for RFC 850 dates
                                         "rfc9110": int | None, the same date
                                         with the two-digit year read per
                                         RFC 9110 5.6.7 relative to "now"
  status        {"code": int}         -> {"r": HTTPStatus(code).phrase | None}
"""

import calendar
import datetime
import email.parser
import email.utils
import http
import http.client
import io
import json
import re
import sys
import urllib.parse

if sys.version_info < (3, 7):
    sys.exit("http_util_oracle.py needs Python >= 3.7 (quote treats '~' as unreserved from 3.7)")

BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
RFC850 = re.compile(r"^[ \t]*[A-Za-z]+, \d\d-[A-Za-z]{3}-\d\d ")


def do_decode(req):
    s = req["s"]
    out = {
        "bad_escape": BAD_ESCAPE.search(s) is not None,
        "bytes_hex": urllib.parse.unquote_to_bytes(s.replace("+", " ")).hex(),
    }
    try:
        out["r"] = urllib.parse.unquote_plus(s, errors="strict")
    except UnicodeDecodeError:
        out["err"] = "utf8"
    except Exception as e:  # noqa: BLE001 - report anything else as is
        out["err"] = repr(e)
    return out


def do_parse_headers(req):
    text = req["s"]
    msg = email.parser.HeaderParser().parsestr(text)
    email_items = [[k, v] for k, v in msg.items()]
    raw = text.encode("utf-8")
    cmsg = http.client.parse_headers(io.BytesIO(raw))
    # http.client decodes as ISO-8859-1; undo that to compare UTF-8 text.
    client_items = [
        [k.encode("latin-1").decode("utf-8"), v.encode("latin-1").decode("utf-8")]
        for k, v in cmsg.items()
    ]
    return {"email": email_items, "client": client_items}


def do_format_headers(req):
    conn = http.client.HTTPConnection("oracle.invalid")
    conn.putrequest("GET", "/", skip_host=True, skip_accept_encoding=True)
    try:
        for name, value in req["pairs"]:
            conn.putheader(name.encode("utf-8"), value.encode("utf-8"))
    except ValueError as e:
        return {"err": str(e)}
    lines = conn._buffer[1:]  # [0] is the request line
    return {"r": b"".join(line + b"\r\n" for line in lines).decode("utf-8")}


def do_http_date(req):
    try:
        return {"r": email.utils.formatdate(req["t"], usegmt=True)}
    except (ValueError, OverflowError, OSError) as e:
        return {"err": repr(e)}


def to_timestamp(dt):
    if dt.tzinfo is None:  # asctime has no zone; HTTP says it is UTC
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return int(dt.timestamp())


def rfc9110_year(dt, now):
    """The RFC 850 date dt (year as Python guessed it) with its two-digit year
    read per RFC 9110: the latest year with those digits that is not more than
    50 years after now. None if that day does not exist in that year."""
    yy = dt.year % 100
    n = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    # now + 50 years; timegm carries 29 Feb of a common year into 1 Mar.
    limit = calendar.timegm((n.year + 50, n.month, n.day, n.hour, n.minute, n.second))
    year = (n.year + 50) // 100 * 100 + yy
    unchecked = calendar.timegm((year, dt.month, dt.day, dt.hour, dt.minute, dt.second))
    if unchecked > limit:
        year -= 100
    try:
        return to_timestamp(dt.replace(year=year))
    except ValueError:
        return None


def do_parse_date(req):
    s = req["s"]
    out = {}
    try:
        dt = email.utils.parsedate_to_datetime(s)
    except (ValueError, TypeError, OverflowError, IndexError):
        dt = None
    out["py"] = None if dt is None else to_timestamp(dt)
    if dt is not None and RFC850.match(s):
        out["rfc9110"] = rfc9110_year(dt, req["now"])
    return out


def do_status(req):
    try:
        return {"r": http.HTTPStatus(req["code"]).phrase}
    except ValueError:
        return {"r": None}


OPS = {
    "encode": lambda req: {"r": urllib.parse.quote(req["s"], safe="")},
    "encode_bytes": lambda req: {"r": urllib.parse.quote(bytes.fromhex(req["hex"]), safe="")},
    "decode": do_decode,
    "parse_headers": do_parse_headers,
    "format_headers": do_format_headers,
    "http_date": do_http_date,
    "parse_date": do_parse_date,
    "status": do_status,
}


def main():
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8").strip()
        if not line:
            continue
        req = json.loads(line)
        answer = OPS[req["op"]](req)
        out.write(json.dumps(answer, ensure_ascii=True).encode("ascii") + b"\n")
    out.flush()


if __name__ == "__main__":
    main()
