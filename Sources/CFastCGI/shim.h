// Only the reentrant FastCGI API. Never fcgi_stdio.h: it redefines stdio.
#include <fcgiapp.h>
#include <stddef.h>

// The first fields of libfcgi's private FCGX_Stream_Data (fcgiapp.c, 2.4.2), the stream's
// `data`: only `buffStop` (where the bytes read into the buffer end) is read, by the function
// below.
typedef struct {
    unsigned char *buff;
    int bufflen;
    unsigned char *mBuff;
    unsigned char *buffStop;
} session_fcgx_stream_data_head;

// How many bytes libfcgi read into a reader stream's buffer past where the stream stopped: on a
// request's input stream read to its end, the start of a next request that the peer sent before
// this one was answered (libfcgi drops them when the request is freed). -1 when the stream's
// buffer does not look as expected (another libfcgi layout): then nothing can be said.
static inline long session_fcgx_bytes_read_ahead(const FCGX_Stream *stream) {
    if (stream == NULL || stream->data == NULL || !stream->isReader || stream->rdNext == NULL) return -1;
    const session_fcgx_stream_data_head *data = (const session_fcgx_stream_data_head *)stream->data;
    if (data->buff == NULL || data->buffStop == NULL || data->bufflen <= 0) return -1;
    if (stream->rdNext < data->buff || data->buffStop < stream->rdNext || data->buffStop > data->buff + data->bufflen) return -1;
    return (long)(data->buffStop - stream->rdNext);
}
