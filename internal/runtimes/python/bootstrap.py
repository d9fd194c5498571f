"""Lamina's managed Python runtime (python3.9 - python3.13).

A client of the Lambda Runtime API 2018-06-01 that loads the function's handler
and calls it once per invocation, behaving like AWS's own Python runtime
(awslambdaric plus the managed runtime's /var/runtime/bootstrap.py): the same
handler resolution, error types and error bodies, context object, JSON
encoding and log formats. Standard library only.

Launch contract (Lamina's worker):
    <python> -s $LAMBDA_RUNTIME_DIR/bootstrap.py
or the same with this file compiled by that interpreter (bootstrap.<key>.pyc
in the same directory, see internal/runtimes/bytecode.go), with
cwd = $LAMBDA_TASK_ROOT and _HANDLER, AWS_LAMBDA_RUNTIME_API (host:port),
AWS_LAMBDA_FUNCTION_* and AWS_LAMBDA_LOG_* in the environment.

stdout and stderr are pipes read by the worker, which attributes everything
written between receiving an event and posting its result to that invocation;
so both are line buffered and flushed before every POST.

Start-up time is part of every cold start, so on the way from process start
to the first response the runtime imports nothing the interpreter has not
loaded already but importlib (AWS's runtime imports handlers with it, and its
frames show in an init error's stack trace) and two small C modules:
- _socket, not socket or http.client: the Runtime API client below is a
  minimal HTTP/1.1 client (socket imports enum and selectors; http.client
  also imports email and ssl; together they took longer than the rest of
  the runtime's start-up);
- _json, the json package's C accelerator, used directly: importing json
  compiles regular expressions (re imports enum, functools, ...). Whatever
  the C code does not settle the way json would is handed to json itself.
logging, traceback and json are imported only where needed, and the root
logger gets its Lambda handler when the function first imports logging (see
_LoggingImportHook). Run from source, this file is compiled at every start,
which costs more than the rest of the runtime's start-up; Lamina runs its
bytecode once the interpreter has compiled it. __file__ names the file
Python runs, _THIS_FILE the source as the frames of this file name it.
"""

import importlib
import io
import os
import site
import sys
import time

import _socket

try:
    import _json
except ImportError:  # an interpreter built without the accelerator
    _json = None

# This file as its frames name it: its source, also when Python runs its
# bytecode (__file__ is then the .pyc).
_THIS_FILE = (lambda: None).__code__.co_filename

_RUNTIME_PATH = "/2018-06-01/runtime"

_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"

# Error types of the official runtime (awslambdaric FaultException).
_MARSHAL_ERROR = "Runtime.MarshalError"
_UNMARSHAL_ERROR = "Runtime.UnmarshalError"
_USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
_HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
_IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
_BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
_MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

# AWS_LAMBDA_LOG_FORMAT=JSON switches both the logging module and the runtime's
# own error log lines to JSON; anything else means text.
_LOG_FORMAT_JSON = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"

# The official encoder writes non-ASCII characters as they are (instead of
# \uXXXX escapes) from python3.12 on, keyed on AWS_EXECUTION_ENV.
_ENSURE_ASCII = os.environ.get("AWS_EXECUTION_ENV") not in {
    "AWS_Lambda_python3.12",
    "AWS_Lambda_python3.13",
    "AWS_Lambda_python3.14",
    "AWS_Lambda_python3.15",
}

# The request (and tenant) ID of the invocation being handled, stamped on log
# records by the logging filter; empty during init.
_current_request_id = ""
_current_tenant_id = None


class _FaultException(Exception):
    """A failure the runtime reports with one of its own Runtime.* types."""

    def __init__(self, error_type, msg, trace=None):
        super().__init__(msg)
        self.error_type = error_type
        self.msg = msg
        self.trace = trace


# ---------------------------------------------------------------------------
# JSON (awslambdaric lambda_runtime_marshaller.py, which uses simplejson;
# reproduced with the standard library's C accelerator, see the docstring).


def _encode_json(obj, ensure_ascii, default):
    """json.JSONEncoder(ensure_ascii=ensure_ascii, default=default).encode(obj):
    the same C encoder with the same arguments, without importing json."""
    if _json is not None:
        encode_str = (
            _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
        )
        if isinstance(obj, str):
            return encode_str(obj)
        try:
            # markers (a new dict each time: an encoding that fails can leave
            # entries behind), default, string encoder, indent, separators,
            # sort_keys, skipkeys, allow_nan.
            encoder = _json.make_encoder(
                {}, default, encode_str, None, ": ", ", ", False, False, True
            )
        except (AttributeError, TypeError):
            pass  # another accelerator than json.encoder knows: use json
        else:
            return "".join(encoder(obj, 0))
    import json

    return json.JSONEncoder(ensure_ascii=ensure_ascii, default=default).encode(obj)


def _not_serializable(o):
    """json.JSONEncoder.default: the error for an object JSON cannot hold."""
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


class _Encoder(object):
    """Encodes responses and error bodies the way the official runtime does.

    Beyond the standard library's types it accepts:
    - decimal.Decimal, written as its exact text (str(d)); NaN as NaN. Boto3's
      DynamoDB resources return numbers as Decimal, so handlers return them.
    - bytes nested in the result, decoded as UTF-8 (simplejson's default).
    NaN and infinite floats are allowed, as in the official runtime.

    The standard library cannot write raw text from default(), so a Decimal is
    first encoded as a placeholder string that holds a per-process random
    nonce, and the placeholders are replaced by the numbers afterwards.
    """

    _placeholder_prefix = None  # '"lamina-decimal-<nonce>-', made on first use

    def __init__(self):
        self._decimals = []

    def default(self, o):
        # Decimal can only occur if the decimal module was imported, so it is
        # not imported here (it costs start-up time).
        decimal = sys.modules.get("decimal")
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            if _Encoder._placeholder_prefix is None:
                _Encoder._placeholder_prefix = (
                    '"lamina-decimal-' + os.urandom(16).hex() + "-"
                )
            self._decimals.append(str(o))
            # The JSON string literal is '<prefix><index>"'; strip the quote.
            return _Encoder._placeholder_prefix[1:] + str(len(self._decimals) - 1)
        if isinstance(o, bytes):
            return o.decode("utf-8")
        return _not_serializable(o)

    def encode(self, o):
        self._decimals = []
        text = _encode_json(o, _ENSURE_ASCII, self.default)
        if not self._decimals:
            return text
        parts = text.split(_Encoder._placeholder_prefix)
        out = [parts[0]]
        for part in parts[1:]:
            index, rest = part.split('"', 1)
            out.append(self._decimals[int(index)])
            out.append(rest)
        return "".join(out)


def _to_json(obj):
    return _Encoder().encode(obj)


class _DecoderSettings(object):
    """The attributes of json's default JSONDecoder that its C scanner reads."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "-Infinity": float("-inf"),
        "Infinity": float("inf"),
        "NaN": float("nan"),
    }.__getitem__


try:
    _scan_once = _json.make_scanner(_DecoderSettings())
except Exception:  # no accelerator, or another one: use json
    _scan_once = None

_JSON_WHITESPACE = " \t\n\r"


def _json_loads(s):
    """json.loads(s) for a str or bytes.

    UTF-8 text is decoded by json's own C scanner, as json.loads does; for
    anything else (invalid JSON, other encodings, a BOM) json.loads itself
    gives the result or the error."""
    if _scan_once is not None:
        try:
            text = s.decode("utf-8") if isinstance(s, bytes) else s
            start = 0
            if text[:1] in _JSON_WHITESPACE:
                start = len(text) - len(text.lstrip(_JSON_WHITESPACE))
            obj, end = _scan_once(text, start)
            if end == len(text) or not text[end:].lstrip(_JSON_WHITESPACE):
                return obj
        except Exception:
            pass
    import json

    return json.loads(s)


def _unmarshal_event(body, content_type):
    """The event as the handler sees it: decoded JSON, or the raw bytes when
    the Content-Type is anything but exactly application/json."""
    if content_type != "application/json":
        return body
    try:
        return _json_loads(body)
    except Exception as e:
        raise _FaultException(
            _UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(e)
        )


def _marshal_response(response):
    """The response body and its Content-Type: bytes are sent as they are."""
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise _FaultException(
            _MARSHAL_ERROR, "Unable to marshal response: {}".format(e)
        )


# ---------------------------------------------------------------------------
# Context object (awslambdaric lambda_context.py).


class LambdaContext(object):
    """The handler's second argument: invocation and function metadata."""

    def __init__(
        self,
        invoke_id,
        client_context,
        cognito_identity,
        epoch_deadline_time_in_ms,
        invoked_function_arn=None,
        tenant_id=None,
    ):
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id

        self.client_context = _make_obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _make_obj_from_dict(
                Client, self.client_context.client
            )

        self.identity = _make_obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get(
                "cognitoIdentityId"
            )
            self.identity.cognito_identity_pool_id = cognito_identity.get(
                "cognitoIdentityPoolId"
            )

        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        epoch_now_in_ms = int(time.time() * 1000)
        delta_ms = self._epoch_deadline_time_in_ms - epoch_now_in_ms
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        """Writes msg to the function's log as it is (no newline added)."""
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}"
            "])"
        )


class Client(object):
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"installation_id={self.installation_id},"
            f"app_title={self.app_title},"
            f"app_version_name={self.app_version_name},"
            f"app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}"
            "])"
        )


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(["
            f"custom={self.custom},"
            f"env={self.env},"
            f"client={self.client}"
            "])"
        )


def _make_obj_from_dict(cls, d):
    """An instance of cls with each slot set from d (None when missing)."""
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field, None))
    return obj


def _parse_json_header(value, name):
    try:
        return _json_loads(value)
    except Exception as e:
        raise _FaultException(
            _CONTEXT_UNMARSHAL_ERROR, "Unable to parse {} JSON: {}".format(name, e)
        )


# ---------------------------------------------------------------------------
# Logging (awslambdaric bootstrap.py and lambda_runtime_log_utils.py).
#
# The root logger must have the Lambda handler before user code logs, but
# importing logging costs more than the rest of the runtime's start-up, and
# many functions never use it. So the handler is installed when logging is
# first imported: _LoggingImportHook, first on sys.meta_path, finds the
# logging module's spec as the import system would and gives it a
# _LoggingLoader, which has the module's own loader run it, then takes the
# hook off sys.meta_path and runs _setup_logging, before the import statement
# returns. The module's __loader__ and __spec__.loader are its own loader.


class _LoggingImportHook(object):
    """A sys.meta_path finder that has the logging module loaded by a
    _LoggingLoader."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is not self and find_spec is not None:
                spec = find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        if hasattr(spec.loader, "exec_module"):
            spec.loader = _LoggingLoader(spec.loader, self)
        return spec


class _LoggingLoader(object):
    """Runs the logging module with its own loader, then sets it up."""

    def __init__(self, loader, hook):
        self._loader = loader
        self._hook = hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        if self._hook in sys.meta_path:
            sys.meta_path.remove(self._hook)
        _setup_logging(module)


def _setup_logging_on_import():
    """Sets up logging now if it has been imported already (by a .pth file,
    say), else when it is first imported."""
    logging = sys.modules.get("logging")
    if logging is not None:
        _setup_logging(logging)
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


# LogRecord attributes that the JSON formatter does not copy as extra fields.
_RESERVED_LOG_FIELDS = frozenset(
    (
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "aws_request_id",
        "tenant_id",
    )
)


def _setup_logging(logging):
    """Gives the root logger of the logging module the Lambda handler: text
    lines "[LEVEL]\\t<UTC time>\\t<request id>\\t<message>", or JSON objects;
    level from AWS_LAMBDA_LOG_LEVEL (TRACE means DEBUG), else Python's
    default. The classes are made here, as they derive from logging's."""
    import traceback  # logging has imported it already

    class _RequestIdFilter(logging.Filter):
        """Stamps each record with the current invocation's request ID."""

        def filter(self, record):
            record.aws_request_id = _current_request_id
            record.tenant_id = _current_tenant_id
            return True

    class _StdoutHandler(logging.Handler):
        """Writes formatted records to sys.stdout (looked up on each record, so
        a handler that redirects stdout also redirects the logs)."""

        def emit(self, record):
            sys.stdout.write(self.format(record))

    class _JsonFormatter(logging.Formatter):
        """One JSON object per record, with the official runtime's fields."""

        def __init__(self):
            super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")

        def format(self, record):
            # Levels are rounded down to the standard ones (15 becomes DEBUG).
            record.levelno = min(50, max(0, record.levelno)) // 10 * 10
            record.levelname = logging.getLevelName(record.levelno)
            exc_info = record.exc_info
            result = {
                "timestamp": self.formatTime(record, self.datefmt),
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
                "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
                "errorType": exc_info[0].__name__ if exc_info else None,
                "errorMessage": str(exc_info[1]) if exc_info else None,
                "requestId": getattr(record, "aws_request_id", None),
                "location": (
                    f"{record.pathname}:{record.funcName}:{record.lineno}"
                    if exc_info
                    else None
                ),
            }
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RESERVED_LOG_FIELDS and key not in result:
                    result[key] = value
            result = {k: v for k, v in result.items() if v is not None}
            return _encode_json(result, False, _not_serializable) + "\n"

    for cls in (_RequestIdFilter, _StdoutHandler, _JsonFormatter):
        cls.__qualname__ = cls.__name__

    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    if _LOG_FORMAT_JSON:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {None: "", "TRACE": "DEBUG"}.get(level, level).upper()
    if isinstance(logging.getLevelName(level), int):
        root.setLevel(level)
    root.addHandler(handler)


def _log_error(error):
    """Logs an error result as one log event. Text: "[ERROR] <type>: <msg>",
    "Traceback (most recent call last):" and the frames, joined by \\r (not
    \\n, so the lines stay one event) with leading spaces turned into no-break
    spaces; JSON: the error result with timestamp and log_level."""
    if _LOG_FORMAT_JSON:
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "log_level": "ERROR",
        }
        record.update(error)
        sys.stdout.write(_to_json(record) + "\n")
        return

    description = "[ERROR]"
    if error["errorType"]:
        description += " " + error["errorType"]
    if error["errorMessage"]:
        if error["errorType"]:
            description += ":"
        description += " " + error["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        if element == "":
            lines.append("")
            continue
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    sys.stdout.write("\r".join(lines) + "\n")


def _flush_output():
    """Pushes everything the function wrote so far to the worker's pipes."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass  # replaced by something without flush, or closed by the user


# ---------------------------------------------------------------------------
# Errors.


def _make_error(error_message, error_type, stack_trace, invoke_id=None):
    """The error body posted to the Runtime API (and shown to the caller)."""
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _error_from_exception(exc, invoke_id=None):
    """The error body for an exception raised by user code.

    The stack trace starts at the first frame outside this file, and frames
    are formatted from (file, line, function, text) tuples, so that
    python3.11+ adds no column markers, as in the official runtime.
    """
    import traceback

    frames = [
        (f.filename, f.lineno, f.name, f.line)
        for f in traceback.extract_tb(exc.__traceback__)
    ]
    for i, frame in enumerate(frames):
        if frame[0] != _THIS_FILE:
            frames = frames[i:]
            break
    return _make_error(
        str(exc), type(exc).__name__, traceback.format_list(frames), invoke_id
    )


# ---------------------------------------------------------------------------
# Handler loading.


def _setup_sys_path(task_root):
    """sys.path as Lambda's Python runtimes have it: the task root, then the
    layers' /opt/python/lib/pythonX.Y/site-packages and /opt/python (unless
    the function sets PYTHONPATH itself), then the AWS SDK the node offers
    (where Lambda has /var/runtime), then the interpreter's own. The
    runtime's directory is dropped so that it cannot shadow user modules.
    .pth files in the task root and the layer directories are processed."""
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path and os.path.realpath(sys.path[0]) == here:
        del sys.path[0]
    site_dirs = [task_root]
    if "PYTHONPATH" not in os.environ:
        site_dirs.append(
            "/opt/python/lib/python{}.{}/site-packages".format(*sys.version_info[:2])
        )
        site_dirs.append("/opt/python")
    sdk = os.environ.pop("_LAMINA_SDK_PATH", "")
    if sdk:
        site_dirs.append(sdk)
    for path in reversed(site_dirs):
        sys.path.insert(0, path)
    for path in site_dirs:
        if os.path.isdir(path):
            site.addsitedir(path)


def _load_handler(handler):
    """Imports the handler's module (running its top-level code) and returns
    the handler function, or raises _FaultException."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise _FaultException(
            _MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, e)
        )

    if modname.split(".")[0] in sys.builtin_module_names:
        raise _FaultException(
            _BUILT_IN_MODULE_CONFLICT,
            "Cannot use built-in module {} as a handler module".format(modname),
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise _FaultException(
            _IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, e),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise _FaultException(
            _USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, e),
            trace,
        )

    try:
        return getattr(module, fname)
    except AttributeError:
        raise _FaultException(
            _HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
        )


# ---------------------------------------------------------------------------
# Runtime API client: HTTP/1.1 over one keep-alive connection to the Runtime
# API's loopback address, with just what that needs (see the docstring for
# why not http.client): requests with a Content-Length body; answers with a
# Content-Length, chunked or read-to-close body, after any 1xx answers;
# header names matched case-insensitively, values decoded as ISO-8859-1 as
# http.client does.

_BUFFER_SIZE = 1 << 16
_MAX_LINE = 1 << 16  # the longest status, header or chunk size line taken


class _RuntimeAPIError(Exception):
    """The Runtime API could not be reached, or answered a way that leaves
    this process nothing to do but exit."""


class _HTTPError(Exception):
    """The Runtime API's answer is cut short or malformed."""


class _SocketIO(io.RawIOBase):
    """A socket as a raw stream, read through an io.BufferedReader: it reads
    lines, and reads long bodies straight into the bytes object it returns."""

    def __init__(self, sock):
        self._sock = sock

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._sock.recv_into(buffer)


class _Headers(dict):
    """Header values by lowercased name (the first of repeated headers, as
    http.client's get() returns); get() takes names in any case."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)


class _RuntimeAPI(object):
    """HTTP client of the Runtime API over one keep-alive connection."""

    def __init__(self, address):
        self._address = address  # host:port, also the Host header
        self._sock = None
        self._file = None  # the socket's io.BufferedReader

    def _connect(self):
        """Connects as socket.create_connection does."""
        host, colon, port = self._address.rpartition(":")
        if not colon or "]" in port:  # no port given: HTTP's, 80
            host, port = self._address, "80"
        host = host[1:-1] if host[:1] == "[" and host[-1:] == "]" else host
        if not port.isdecimal():
            raise _HTTPError("nonnumeric port: '{}'".format(port))
        if host.isascii():
            # As bytes: a str is encoded with the "idna" codec, whose import
            # takes longer than the rest of the runtime's start-up.
            host = host.encode()
        error = OSError("getaddrinfo returns an empty list")
        for family, kind, proto, _, address in _socket.getaddrinfo(
            host, int(port), 0, _socket.SOCK_STREAM
        ):
            sock = _socket.socket(family, kind, proto)
            try:
                # No timeout: /next waits for as long as the environment stays
                # idle, whatever socket.setdefaulttimeout() user code called.
                sock.settimeout(None)
                sock.connect(address)
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            except OSError as e:
                sock.close()
                error = e
            else:
                self._sock = sock
                self._file = io.BufferedReader(_SocketIO(sock), _BUFFER_SIZE)
                return
        raise error

    def _close(self):
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def _request(self, method, path, body=None, headers=()):
        """Sends one request and returns (status, headers, body).

        A reused connection that the server has closed meanwhile fails on
        first use; the request is then retried once on a new connection."""
        if not (path.isascii() and path.isprintable()) or " " in path:
            raise _RuntimeAPIError(
                "{} {!r}: not a valid request path".format(method, path)
            )
        head = "{} {} HTTP/1.1\r\nHost: {}\r\n".format(method, path, self._address)
        for name, value in headers:
            head += name + ": " + value + "\r\n"
        if body is not None:
            head += "Content-Length: {}\r\n".format(len(body))
        # Characters outside ISO-8859-1 (an init error's type is any Python
        # identifier) are sent as question marks.
        head = (head + "\r\n").encode("latin-1", "replace")
        if body and len(body) <= _BUFFER_SIZE:
            head, body = head + body, None
        while True:
            reused = self._sock is not None
            try:
                if not reused:
                    self._connect()
                self._sock.sendall(head)
                if body:
                    self._sock.sendall(body)
                return self._read_response()
            except (OSError, _HTTPError) as e:
                self._close()
                if not reused:
                    raise _RuntimeAPIError(
                        "{} {} to the Runtime API at {} failed: {}".format(
                            method, path, self._address, e
                        )
                    )

    def _read_line(self):
        """Reads a line, with its line break (none at the end of input)."""
        line = self._file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise _HTTPError("got a line of more than {} bytes".format(_MAX_LINE))
        return line

    def _read_response(self):
        """Reads one answer: (status, headers, body)."""
        line = self._read_line()
        if not line:
            raise _HTTPError("Remote end closed connection without response")
        version, status = (line.decode("latin-1").split(None, 2) + [""])[:2]
        if (
            not version.startswith("HTTP/")
            or len(status) != 3
            or not status.isdecimal()
        ):
            raise _HTTPError("bad status line: {!r}".format(line))
        status = int(status)
        headers = _Headers()
        line = self._read_line()
        while line.strip():
            name, colon, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if colon and name not in headers:
                headers[name] = value.strip()
            line = self._read_line()
        if status < 200:  # 100 Continue and the like: the answer follows
            return self._read_response()
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            close = "close" in connection
        else:
            close = "keep-alive" not in connection
        length = headers.get("content-length", "")
        if status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self._read_line()
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise _HTTPError("bad chunk size line: {!r}".format(line))
                if not size:
                    break
                chunks.append(self._read_exact(size))
                self._read_line()  # the CRLF after the chunk's data
            while self._read_line().strip():
                pass  # trailers, up to an empty line
            body = b"".join(chunks)
        elif length.isdecimal():
            body = self._read_exact(int(length))
        else:  # the body ends when the server closes the connection
            body, close = self._file.read(), True
        if close:
            self._close()
        return status, headers, body

    def _read_exact(self, n):
        """Reads n bytes of a body."""
        data = self._file.read(n)
        if len(data) < n:
            raise _HTTPError(
                "IncompleteRead({} bytes read, {} more expected)".format(
                    len(data), n - len(data)
                )
            )
        return data

    def next_invocation(self):
        """Waits for the next event; returns its (headers, body)."""
        path = _RUNTIME_PATH + "/invocation/next"
        status, headers, body = self._request("GET", path)
        if status != 200:
            raise _RuntimeAPIError(
                "GET {} answered HTTP {}: {!r}".format(path, status, body)
            )
        if not headers.get("Lambda-Runtime-Aws-Request-Id"):
            raise _RuntimeAPIError(
                "GET {} answered without Lambda-Runtime-Aws-Request-Id".format(path)
            )
        return headers, body

    def post_response(self, invoke_id, body, content_type):
        self._post(
            "/invocation/{}/response".format(invoke_id),
            body,
            (("Content-Type", content_type),),
        )

    def post_error(self, invoke_id, error):
        self._post(
            "/invocation/{}/error".format(invoke_id),
            _to_json(error).encode("utf-8"),
            (("Content-Type", "application/json"),),
        )

    def post_init_error(self, error):
        self._post(
            "/init/error",
            _to_json(error).encode("utf-8"),
            (
                ("Content-Type", "application/json"),
                (_ERROR_TYPE_HEADER, error["errorType"]),
            ),
        )

    def _post(self, path, body, headers):
        """POSTs to the Runtime API after flushing the function's output.

        A 4xx answer (e.g. 413 for a response over the payload limit, which
        the platform reports to the caller itself) is logged and the loop goes
        on; a 5xx answer means the environment is broken, so the runtime
        exits."""
        _flush_output()
        path = _RUNTIME_PATH + path
        status, _, answer = self._request("POST", path, body, headers)
        if 200 <= status < 300:
            return
        message = "POST {} answered HTTP {}: {}".format(
            path, status, answer.decode("utf-8", "replace")
        )
        if status >= 500:
            raise _RuntimeAPIError(message)
        sys.stderr.write("[ERROR] Lamina runtime: " + message + "\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------------
# Main loop.


def _handle_invocation(api, request_handler, headers, body):
    """Calls the handler for one event and posts its result or error."""
    global _current_request_id, _current_tenant_id

    invoke_id = headers.get("Lambda-Runtime-Aws-Request-Id")
    tenant_id = headers.get("Lambda-Runtime-Aws-Tenant-Id") or None
    _current_request_id = invoke_id
    _current_tenant_id = tenant_id

    trace_id = headers.get("Lambda-Runtime-Trace-Id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    deadline = headers.get("Lambda-Runtime-Deadline-Ms", "")
    try:
        client_context = headers.get("Lambda-Runtime-Client-Context")
        cognito_identity = headers.get("Lambda-Runtime-Cognito-Identity")
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context, "Client Context")
            if client_context
            else None,
            _parse_json_header(cognito_identity, "Cognito Identity")
            if cognito_identity
            else None,
            int(deadline) if deadline.isdigit() else 0,
            headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
            tenant_id,
        )
        event = _unmarshal_event(body, headers.get("Content-Type"))
        result, content_type = _marshal_response(request_handler(event, context))
    except _FaultException as e:
        error = _make_error(e.msg, e.error_type, e.trace, invoke_id)
    except Exception as e:
        error = _error_from_exception(e, invoke_id)
    else:
        api.post_response(invoke_id, result, content_type)
        return
    _log_error(error)
    api.post_error(invoke_id, error)


def _await_assignment():
    """A runtime started ahead of its function (_LAMINA_ASSIGNMENT_FD set,
    see internal/sandbox/prestart.go) waits here, its interpreter and this
    module loaded, until the worker hands it a function: one JSON object
    {"env": [...], "cwd": ...} on that descriptor, then its end. The
    environment is replaced as a whole, so the function sees exactly what a
    fresh start would have given it."""
    global _LOG_FORMAT_JSON
    fd = os.environ.get("_LAMINA_ASSIGNMENT_FD")
    if fd is None:
        return
    chunks = []
    while True:
        chunk = os.read(int(fd), 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(int(fd))
    assignment = _json_loads(b"".join(chunks).decode())
    os.environ.clear()
    for var in assignment["env"]:
        name, _, value = var.partition("=")
        os.environ[name] = value
    os.chdir(assignment["cwd"])
    time.tzset()
    _LOG_FORMAT_JSON = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def main():
    _await_assignment()
    # Prompt output: every complete line reaches the worker when written.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)

    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("Lamina runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    api = _RuntimeAPI(address)

    _setup_sys_path(os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd())
    _setup_logging_on_import()

    try:
        try:
            request_handler = _load_handler(os.environ.get("_HANDLER", ""))
        except _FaultException as e:
            error = _make_error(e.msg, e.error_type, e.trace)
        except Exception as e:
            error = _error_from_exception(e)
        else:
            error = None
        if error is not None:
            _log_error(error)
            api.post_init_error(error)
            sys.exit(1)

        while True:
            headers, body = api.next_invocation()
            _handle_invocation(api, request_handler, headers, body)
    except _RuntimeAPIError as e:
        _flush_output()
        sys.stderr.write("Lamina runtime: {}\n".format(e))
        sys.exit(1)


if __name__ == "__main__":
    main()
