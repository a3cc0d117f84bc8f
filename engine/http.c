/* placeholder: replaced by the real sf.http primitive */
#include <lua.h>
#include <lauxlib.h>
int luaopen_sf_http(lua_State *L);
int luaopen_sf_http(lua_State *L) { lua_newtable(L); return 1; }
