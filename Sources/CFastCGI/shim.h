// Only the reentrant FastCGI API. Never fcgi_stdio.h: it redefines stdio.
#include <fcgiapp.h>
