// cxx_leak.cpp - a leak in a C++ function, for the demangled name in the
// report: widgets::Factory::make(int).
#include <cstdio>
#include <cstring>

namespace widgets {
struct Factory {
	__attribute__((noinline)) static char *make(int n);
};
char *Factory::make(int n)
{
	char *p = new char[n];
	std::memset(p, 1, n);
	__asm__ volatile("" : : "g"(p) : "memory");
	return p;
}
} // namespace widgets

int main()
{
	for (int i = 0; i < 4; i++)
		widgets::Factory::make(64);
	std::puts("done");
	return 0;
}
