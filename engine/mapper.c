/* placeholder: replaced by the real sf.mapper primitive */
#include <lua.h>
#include <lauxlib.h>
int luaopen_sf_mapper(lua_State *L);
int luaopen_sf_mapper(lua_State *L) { lua_newtable(L); return 1; }
