// Placeholder: the llhttp wrapper lands with the HTTP routing issue.
#include <llhttp.h>
