#ifndef CALC_H
#define CALC_H
int add(int a, int b);
int mul(int a, int b);
int scale(int x);
#endif
