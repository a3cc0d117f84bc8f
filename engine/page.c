/* placeholder: replaced by the real sf.page primitive */
#include <lua.h>
#include <lauxlib.h>
int luaopen_sf_page(lua_State *L);
int luaopen_sf_page(lua_State *L) { lua_newtable(L); return 1; }
