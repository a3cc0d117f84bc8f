/* placeholder main: replaced by the real CLI */
#include <stdio.h>
int main(void) { fputs("sfengine: not built yet\n", stderr); return 1; }
