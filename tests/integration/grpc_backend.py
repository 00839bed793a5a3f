"""A gRPC server for tests (Debian python3-grpcio), without generated code:
methods take and return raw bytes.

  /test.Echo/Unary         answers b"echo:" + request
  /test.Echo/Stream        answers N messages b"msg-i" (N = int(request))
  /test.Echo/Fail          fails with NOT_FOUND, message "no such thing"
"""
from concurrent import futures

import grpc


def _unary(req, ctx):
    ctx.set_trailing_metadata((("x-trailer", "t1"),))
    return b"echo:" + req


def _stream(req, ctx):
    for i in range(int(req)):
        yield b"msg-%d" % i


def _fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def start(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail),
    })
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    return server
